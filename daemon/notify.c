/*
 * notify.c - tell the service manager how we are (sd_notify(3)'s
 * protocol: one datagram to the socket named by $NOTIFY_SOCKET), and
 * hand it fds to keep (FDSTORE=1, sd_pid_notify_with_fds(3)).
 */
#include <config.h>

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "zsd.h"

#define NOTIFY_FDS_MAX	4

/*
 * Send state, with nr fds (SCM_RIGHTS) if nr > 0.  0; -ENOTCONN when no
 * service manager asked for notifications; else -errno.
 */
int
notify_fds(const char *state, const int *fds, unsigned int nr)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun;
	struct iovec iov;
	struct msghdr mh;
	struct cmsghdr *c;
	union {
		struct cmsghdr	h;
		char		buf[CMSG_SPACE(sizeof(int) * NOTIFY_FDS_MAX)];
	} u;
	size_t n;
	int fd, error = 0;

	if (path == NULL || (path[0] != '/' && path[0] != '@'))
		return -ENOTCONN;
	if ((n = strlen(path)) >= sizeof(sun.sun_path) ||
	    nr > NOTIFY_FDS_MAX)
		return -EINVAL;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, n);
	if (path[0] == '@')
		sun.sun_path[0] = '\0';		/* abstract namespace */
	iov.iov_base = (void *)state;
	iov.iov_len = strlen(state);
	memset(&mh, 0, sizeof(mh));
	mh.msg_name = &sun;
	mh.msg_namelen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
	    n);
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (nr > 0) {
		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nr);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nr);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nr);
	}
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	if (sendmsg(fd, &mh, MSG_NOSIGNAL) < 0)
		error = -errno;
	close(fd);
	return error;
}

/* A failure is logged and otherwise ignored: it only costs a timeout. */
void
notify(const char *state)
{
	int error;

	if ((error = notify_fds(state, NULL, 0)) != 0 && error != -ENOTCONN) {
		errno = -error;
		log_warn("notify %s", getenv("NOTIFY_SOCKET"));
	}
}
