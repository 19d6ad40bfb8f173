/*
 * zsctl.h - what zsctl's files share.
 */
#ifndef ZSCTL_H
#define ZSCTL_H

#include <stdbool.h>
#include <stdio.h>

#include "proto.h"

/* zsctl-prom.c */
/*
 * stat and classes, the replies of zsd, as metrics in the Prometheus
 * text exposition format (version 0.0.4).  classes may be NULL; its
 * classes without zspages are left out unless all.
 */
void	 prom_print(FILE *f, const struct proto_msg *stat,
	    const struct proto_msg *classes, bool all);

#endif /* ZSCTL_H */
