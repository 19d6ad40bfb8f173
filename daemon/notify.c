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
 * sendmsg(2) of len bytes of buf with nr fds (SCM_RIGHTS, at most
 * NOTIFY_FDS_MAX), to the address to (NULL: the connected peer).  The
 * bytes sent, or -errno.
 */
ssize_t
send_fds(int sock, const struct sockaddr_un *to, socklen_t tolen,
    const void *buf, size_t len, const int *fds, unsigned int nr)
{
	struct iovec iov = { (void *)buf, len };
	struct msghdr mh;
	struct cmsghdr *c;
	union {
		struct cmsghdr	h;
		char		buf[CMSG_SPACE(sizeof(int) * NOTIFY_FDS_MAX)];
	} u;
	ssize_t n;

	if (nr > NOTIFY_FDS_MAX)
		return -EINVAL;
	memset(&mh, 0, sizeof(mh));
	mh.msg_name = (void *)to;
	mh.msg_namelen = to != NULL ? tolen : 0;
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
	while ((n = sendmsg(sock, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR)
		;
	return n < 0 ? -errno : n;
}

/*
 * Send state, with nr fds (SCM_RIGHTS) if nr > 0.  0; -ENOTCONN when no
 * service manager asked for notifications; else -errno.
 */
int
notify_fds(const char *state, const int *fds, unsigned int nr)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun;
	ssize_t sent;
	size_t n;
	int fd;

	if (path == NULL || (path[0] != '/' && path[0] != '@'))
		return -ENOTCONN;
	if ((n = strlen(path)) >= sizeof(sun.sun_path))
		return -EINVAL;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, n);
	if (path[0] == '@')
		sun.sun_path[0] = '\0';		/* abstract namespace */
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	sent = send_fds(fd, &sun, (socklen_t)(offsetof(struct sockaddr_un,
	    sun_path) + n), state, strlen(state), fds, nr);
	close(fd);
	return sent < 0 ? (int)sent : 0;
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
