/*
 * keeper.c - the process that holds what must outlive a serving zsd, and
 * the server's end of its channel.
 *
 * zsd runs as two processes.  The keeper (the process zsd was started as)
 * holds the FUSE connection's /dev/fuse fd, the arena (the pool and the
 * store, persist.c) and the state (struct zsd_state), two files of shared
 * memory that are never swapped (memfile.c), and runs the server, which
 * does all the work.  The kernel aborts a FUSE connection when the last
 * /dev/fuse fd closes: while the keeper holds one, a server that dies
 * leaves the mount, the loop device and swap as they are, with the
 * requests it had read kept by the kernel, and the keeper starts a new
 * server that takes the connection over (fs.c).
 *
 * The keeper does as little as can be: no I/O but its channel to the
 * server and waitpid, no allocation after start, memory locked.  Per
 * server it makes a socketpair (SOCK_SEQPACKET); the server finds its end
 * at the fd number in $ZSD_KEEPER_FD and receives, with SCM_RIGHTS, the
 * arena, the state and (for every server after the first) the /dev/fuse
 * fd.  The first server mounts and sends the /dev/fuse fd back.  Messages
 * are one struct keeper_msg each:
 *
 *	KEEPER_FDS	keeper -> server: arena, state[, fuse]
 *	KEEPER_FUSE	server -> keeper: the /dev/fuse fd it mounted
 *	KEEPER_STOPPED	server -> keeper: stopped cleanly (swapoff done,
 *			unmounted): exit with the server's status
 *	KEEPER_RESTART	server -> keeper: exiting to be replaced (zsctl
 *			restart): start the next server at once
 *	KEEPER_HANDOVER	server -> keeper: exiting, and the service
 *			manager holds the fds: exit too, start none
 *
 * A server that ends any other way (a signal, an exit without
 * KEEPER_STOPPED) is replaced: at once if it had served (it said so in
 * the state), else after a delay that doubles from KEEPER_BACKOFF_MIN to
 * KEEPER_BACKOFF_MAX while servers keep dying before they serve; the
 * keeper never gives up while it holds the /dev/fuse fd (giving up
 * would lose every page).  A server that ends before it has
 * mounted leaves nothing to keep: the keeper exits with its status.
 * SIGTERM, SIGINT and SIGHUP are forwarded to the server; a stop signal
 * is forwarded again to the next server if the one asked died first.
 * New servers run the binary on disk at the path zsd was started as, so
 * that an upgrade takes effect at the next restart.
 *
 * Under a service manager with a file descriptor store (systemd: $FDSTORE
 * and $NOTIFY_SOCKET set, FileDescriptorStoreMax= in zsd.service), the
 * keeper also hands it the three fds (FDSTORE=1, named FDNAME=zsd-arena,
 * zsd-state, zsd-fuse), so that they outlive the keeper too.  When the
 * keeper dies, its server exits without swapoff (keeper_on_channel) and
 * the service manager starts zsd again (Restart=always) with the fds in
 * $LISTEN_FDS; the new keeper takes them (keeper_adopt) and its first
 * server takes the connection and the pool over as any successor does.
 * The server's KEEPER_HANDOVER ends both processes the same way on
 * purpose (zsctl restart --handover).  A clean stop takes the fds out
 * of the store (FDSTOREREMOVE=1).
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "zsd.h"

#define KEEPER_ENV		"ZSD_KEEPER_FD"
#define KEEPER_STATE_MAGIC	0x7a73646bu	/* "zsdk" */
#define KEEPER_STATE_VERSION	1
#define KEEPER_BACKOFF_MIN	100		/* ms */
#define KEEPER_BACKOFF_MAX	5000		/* ms */
#define KEEPER_STABLE		10000		/* ms: a server this old */
						/* was not crash-looping */

enum keeper_msg_type {
	KEEPER_FDS = 1,
	KEEPER_FUSE,
	KEEPER_STOPPED,
	KEEPER_RESTART,
	KEEPER_HANDOVER,
};

struct keeper_msg {
	uint32_t	type;		/* enum keeper_msg_type */
	uint32_t	nr_fds;		/* passed with it (SCM_RIGHTS) */
};

/* Index of the fds a KEEPER_FDS message carries. */
enum { KFD_ARENA, KFD_STATE, KFD_FUSE, KFD_MAX };

/* Their names in the service manager's fd store. */
static const char *const keeper_fdnames[KFD_MAX] = {
	"zsd-arena", "zsd-state", "zsd-fuse"
};

/*
 * The keeper's exit status after KEEPER_HANDOVER (EX_TEMPFAIL): the
 * service manager starts zsd again on it, not on 0, an orderly stop.
 */
#define KEEPER_EXIT_HANDOVER	75

/* How long a keeper that takes the fds over waits for the old server. */
#define KEEPER_ADOPT_WAIT	10000		/* ms */

/*
 * The keeper's own state; static, touched by the keeper's one thread.
 * The signal handler only sets the pending flags.
 */
struct keeper {
	char		 exe[PATH_MAX];	/* the binary, resolved at start */
	char		**argv;		/* the servers' command line */
	int		 chan_no;	/* fd number servers find the channel at */
	int		 fds[KFD_MAX];	/* arena, state, fuse (-1: none yet) */
	struct zsd_state *state;
	int		 chan;		/* to the running server, or -1 */
	pid_t		 server;	/* running, or 0 */
	struct timespec	 started;	/* of the running server */
	struct timespec	 next_start;	/* when none runs: start one then */
	unsigned int	 backoff;	/* ms, the last delay */
	bool		 stopped;	/* the server said KEEPER_STOPPED */
	bool		 restart_asked;	/* the server said KEEPER_RESTART */
	bool		 handover;	/* the server said KEEPER_HANDOVER */
	bool		 fdstore;	/* a service manager keeps fds */
	bool		 stored[KFD_MAX];	/* fds[i] is in its store */
	unsigned long long start;	/* this keeper's start time */
	int		 stop_sig;	/* a stop forwarded, until one is done */
};

static struct keeper keeper;
/* Server: zsd.c's restart, for a handover when the keeper goes. */
static int (*keeper_server_restart)(struct zsd *, bool);
static volatile sig_atomic_t keeper_pending[4];	/* TERM, INT, HUP, CHLD */
static const int keeper_signals[4] = { SIGTERM, SIGINT, SIGHUP, SIGCHLD };

/* Send a message with nr fds; 0 or -errno. */
static int
keeper_send(int sock, uint32_t type, const int *fds, unsigned int nr)
{
	struct keeper_msg m = { type, nr };
	ssize_t n;

	if ((n = send_fds(sock, NULL, 0, &m, sizeof(m), fds, nr)) < 0)
		return (int)n;
	return n == (ssize_t)sizeof(m) ? 0 : -EPROTO;
}

/*
 * Receive a message; its fds (close-on-exec) into fds, at most max, the
 * rest closed, m->nr_fds set to how many came.  1, 0 at the end, -errno.
 */
static int
keeper_recv(int sock, struct keeper_msg *m, int *fds, unsigned int max,
    int flags)
{
	struct iovec iov = { m, sizeof(*m) };
	union {
		struct cmsghdr	h;
		char		buf[CMSG_SPACE(sizeof(int) * KFD_MAX)];
	} u;
	struct msghdr mh;
	struct cmsghdr *c;
	unsigned int i, got = 0, nr;
	int fd;
	ssize_t n;

	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = u.buf;
	mh.msg_controllen = sizeof(u.buf);
	while ((n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | flags)) < 0 &&
	    errno == EINTR)
		;
	if (n < 0)
		return -errno;
	if (n == 0)
		return 0;
	for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		nr = (unsigned int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (i = 0; i < nr; i++) {
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			if (got < max)
				fds[got++] = fd;
			else
				close(fd);
		}
	}
	if (n != (ssize_t)sizeof(*m) || (mh.msg_flags & MSG_CTRUNC)) {
		for (i = 0; i < got; i++)
			close(fds[i]);
		return -EPROTO;
	}
	m->nr_fds = got;
	return 1;
}

/* --- the keeper ---------------------------------------------------------- */

static void
keeper_on_signal(int sig)
{
	unsigned int i;

	for (i = 0; i < 4; i++)
		if (keeper_signals[i] == sig)
			keeper_pending[i] = 1;
}

static long long
keeper_ms(const struct timespec *a, const struct timespec *b)
{
	return (long long)(b->tv_sec - a->tv_sec) * 1000 +
	    (b->tv_nsec - a->tv_nsec) / 1000000;
}

/*
 * The start time of process pid (field 22 of /proc/PID/stat, clock ticks
 * since boot), which tells it from a later process given the same pid;
 * 0 if it is gone.
 */
static unsigned long long
keeper_starttime(pid_t pid)
{
	char path[32], buf[512], *p;
	unsigned long long t = 0;
	ssize_t n;
	int fd, field;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* After the command's closing parenthesis: field 3, the state. */
	if ((p = strrchr(buf, ')')) == NULL)
		return 0;
	for (field = 2; field < 22 && p != NULL; field++)
		p = strchr(p + 1, ' ');
	if (p != NULL)
		t = strtoull(p + 1, NULL, 10);
	return t;
}

/* Hand fds[i] to the service manager's store; 0 or -errno. */
static int
keeper_store(struct keeper *k, unsigned int i)
{
	char msg[64];
	int error;

	if (!k->fdstore || k->stored[i] || k->fds[i] < 0)
		return 0;
	/* systemd drops a /dev/fuse fd whose connection ends (EPOLLERR). */
	snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s", keeper_fdnames[i]);
	if ((error = notify_fds(msg, &k->fds[i], 1)) != 0) {
		errno = -error;
		log_warn("keeper: handing %s to the service manager",
		    keeper_fdnames[i]);
		return error;
	}
	k->stored[i] = true;
	if (k->stored[KFD_ARENA] && k->stored[KFD_STATE] &&
	    k->stored[KFD_FUSE])
		k->state->fdstore = 1;
	return 0;
}

/* Take every fd of ours out of the service manager's store. */
static void
keeper_unstore(struct keeper *k)
{
	char msg[64];
	unsigned int i;

	if (k->state != NULL)
		k->state->fdstore = 0;
	for (i = 0; i < KFD_MAX; i++) {
		if (!k->stored[i])
			continue;
		snprintf(msg, sizeof(msg), "FDSTOREREMOVE=1\nFDNAME=%s",
		    keeper_fdnames[i]);
		(void)notify_fds(msg, NULL, 0);
		k->stored[i] = false;
	}
}

static const char keeper_other_version[] =
    "its state is of another version of zsd";

/* Map the state file; NULL, or why not. */
static const char *
keeper_map_state(struct keeper *k)
{
	struct stat st;

	if (fstat(k->fds[KFD_STATE], &st) != 0 ||
	    st.st_size < (off_t)sizeof(struct zsd_state))
		return "its state is too short";
	k->state = mmap(NULL, sizeof(struct zsd_state), PROT_READ |
	    PROT_WRITE, MAP_SHARED, k->fds[KFD_STATE], 0);
	if (k->state == MAP_FAILED) {
		k->state = NULL;
		return "its state cannot be mapped";
	}
	if (k->state->magic != KEEPER_STATE_MAGIC ||
	    k->state->version != KEEPER_STATE_VERSION)
		return keeper_other_version;
	return NULL;
}

/*
 * The server of the keeper that stored the fds may still be on its way
 * out: wait for it, then kill it.  Two servers must never share a pool:
 * false if it will not go.
 */
static bool
keeper_adopt_wait(struct keeper *k)
{
	struct timespec nap = { 0, 10 * 1000 * 1000 };
	pid_t pid = k->state->server_pid;
	unsigned long long t = k->state->server_start;
	unsigned int waited;

	if (pid <= 0)
		return true;
	if (t == 0)		/* not known: a pid alone may have been reused */
		return kill(pid, 0) != 0;
	if (keeper_starttime(pid) != t)
		return true;
	log_info("keeper: waiting for server pid %ld of the keeper before "
	    "to exit", (long)pid);
	for (waited = 0; waited < 2 * KEEPER_ADOPT_WAIT; waited += 10) {
		if (waited == KEEPER_ADOPT_WAIT) {
			log_warnx("keeper: server pid %ld of the keeper before "
			    "is still there after %d ms: killing it",
			    (long)pid, KEEPER_ADOPT_WAIT);
			kill(pid, SIGKILL);
		}
		nanosleep(&nap, NULL);
		if (keeper_starttime(pid) != t)
			return true;
	}
	log_warnx("keeper: server pid %ld of the keeper before does not die: "
	    "not taking its pool over", (long)pid);
	return false;
}

/*
 * sd_listen_fds(3)'s protocol: a service manager that kept fds for us
 * passes them from fd 3 on, their names in $LISTEN_FDNAMES.  Take the
 * arena, the state and /dev/fuse of a zsd whose keeper is gone.  A set
 * that cannot be served (one missing, the connection gone: its pages
 * are lost already) is closed and taken out of the store; any other fd
 * is closed.  1 if a live set was taken, 0 if none, -1 if it cannot be
 * taken now (of another version of zsd, its keeper still alive, or its
 * server will not die): it is left as it is, and this zsd exits.
 */
static int
keeper_adopt(struct keeper *k)
{
	const char *pid = getenv("LISTEN_PID"), *nfds = getenv("LISTEN_FDS");
	const char *names = getenv("LISTEN_FDNAMES"), *why = NULL;
	struct pollfd pfd;
	char name[64];
	unsigned int i, j;
	size_t len;
	long n;

	if (pid == NULL || nfds == NULL || strtol(pid, NULL, 10) != getpid())
		return 0;
	n = strtol(nfds, NULL, 10);
	for (i = 0; n > 0 && n < 1024 && i < (unsigned int)n; i++) {
		len = 0;
		if (names != NULL) {
			len = strcspn(names, ":");
			snprintf(name, sizeof(name), "%.*s", (int)len, names);
			names = names[len] == ':' ? names + len + 1 : NULL;
		} else {
			name[0] = '\0';
		}
		(void)fcntl(3 + (int)i, F_SETFD, FD_CLOEXEC);
		for (j = 0; j < KFD_MAX; j++)
			if (strcmp(name, keeper_fdnames[j]) == 0 &&
			    k->fds[j] < 0)
				break;
		if (j == KFD_MAX) {
			log_warnx("keeper: fd %u from the service manager (%s) "
			    "is not one of zsd's: closed", 3 + i,
			    name[0] != '\0' ? name : "no name");
			close(3 + (int)i);
			continue;
		}
		k->fds[j] = 3 + (int)i;
		k->stored[j] = true;
	}
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if (k->fds[KFD_ARENA] < 0 && k->fds[KFD_STATE] < 0 &&
	    k->fds[KFD_FUSE] < 0)
		return 0;

	if (k->fds[KFD_ARENA] < 0 || k->fds[KFD_STATE] < 0 ||
	    k->fds[KFD_FUSE] < 0)
		why = "not all of them came back";
	else if ((why = keeper_map_state(k)) == NULL) {
		pfd.fd = k->fds[KFD_FUSE];
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 0) < 0 || (pfd.revents & POLLERR))
			why = "its FUSE connection has ended";
	}
	if (why == keeper_other_version) {
		log_warnx("keeper: the service manager keeps the FUSE "
		    "connection and the pool of a zsd of another version, "
		    "which this one cannot take over: left as they are; "
		    "start the zsd that made them");
		return -1;
	}
	if (why != NULL) {
		log_warnx("keeper: the service manager kept fds of a zsd "
		    "before this one, but %s: starting afresh", why);
		keeper_unstore(k);
		if (k->state != NULL)
			munmap(k->state, sizeof(*k->state));
		k->state = NULL;
		for (i = 0; i < KFD_MAX; i++) {
			if (k->fds[i] >= 0)
				close(k->fds[i]);
			k->fds[i] = -1;
		}
		return 0;
	}
	/*
	 * A keeper still alive (a stop that timed out and left it, say)
	 * holds its own fds and may start servers: leave the set to it.
	 */
	if (k->state->keeper_start != 0 &&
	    keeper_starttime(k->state->keeper_pid) == k->state->keeper_start) {
		log_warnx("keeper: keeper pid %ld, which left its FUSE "
		    "connection and pool with the service manager, is still "
		    "there: not taking them over", (long)k->state->keeper_pid);
		return -1;
	}
	log_info("keeper: taking over the FUSE connection and the pool that "
	    "keeper pid %ld left with the service manager",
	    (long)k->state->keeper_pid);
	if (!keeper_adopt_wait(k))
		return -1;
	k->state->restarts++;
	k->state->last_pid = 0;		/* unknown: its keeper is gone */
	k->state->last_status = 0;
	k->state->last_asked = 0;
	k->state->fdstore = 1;
	return 1;
}

/* Start a server; 0, or -errno (the keeper tries again later). */
static int
keeper_spawn(struct keeper *k)
{
	sigset_t set;
	unsigned int i;
	int sv[2], error;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
		return -errno;
	k->stopped = false;
	k->restart_asked = false;
	k->handover = false;
	k->state->keeper_pid = getpid();
	k->state->keeper_start = k->start;
	if ((pid = fork()) < 0) {
		error = -errno;
		close(sv[0]);
		close(sv[1]);
		return error;
	}
	if (pid == 0) {
		/*
		 * The server blocks the stop signals until it catches them
		 * (keeper_watch): one forwarded early waits, not kills.
		 */
		for (i = 0; i < 4; i++)
			signal(keeper_signals[i], SIG_DFL);
		sigemptyset(&set);
		sigaddset(&set, SIGTERM);
		sigaddset(&set, SIGINT);
		sigaddset(&set, SIGHUP);
		sigprocmask(SIG_SETMASK, &set, NULL);
		if (dup2(sv[1], k->chan_no) < 0 ||
		    fcntl(k->chan_no, F_SETFD, 0) != 0)
			_exit(127);
		execv(k->exe, k->argv);
		log_warn("keeper: cannot run %s", k->exe);
		_exit(127);
	}
	close(sv[1]);
	k->chan = sv[0];
	k->server = pid;
	k->state->served = 0;
	clock_gettime(CLOCK_MONOTONIC, &k->started);
	if ((error = keeper_send(k->chan, KEEPER_FDS, k->fds,
	    k->fds[KFD_FUSE] >= 0 ? 3 : 2)) != 0) {
		/* It cannot start without them: it exits, and is replaced. */
		errno = -error;
		log_warn("keeper: sending the fds to server pid %ld",
		    (long)pid);
	}
	if (k->stop_sig != 0)
		kill(pid, k->stop_sig);
	return 0;
}

/* A message from the server. */
static void
keeper_read(struct keeper *k, int flags)
{
	struct keeper_msg m;
	int fds[KFD_MAX], r;
	unsigned int i;

	for (;;) {
		r = keeper_recv(k->chan, &m, fds, KFD_MAX, flags);
		if (r == -EAGAIN || r == -EPROTO)
			return;
		if (r <= 0) {
			/* The server is gone (or going): waitpid says how. */
			close(k->chan);
			k->chan = -1;
			return;
		}
		switch (m.type) {
		case KEEPER_FUSE:
			if (m.nr_fds == 1 && k->fds[KFD_FUSE] < 0) {
				k->fds[KFD_FUSE] = fds[0];
				m.nr_fds = 0;
				(void)keeper_store(k, KFD_FUSE);
			}
			break;
		case KEEPER_HANDOVER:
			k->handover = true;
			break;
		case KEEPER_STOPPED:
			k->stopped = true;
			break;
		case KEEPER_RESTART:
			k->restart_asked = true;
			break;
		}
		for (i = 0; i < m.nr_fds; i++)
			close(fds[i]);
		if (!(flags & MSG_DONTWAIT))
			return;
	}
}

/* The exit status a shell would give for wait status st. */
static int
keeper_exit_status(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return 1;
}

/*
 * The server ended with wait status st.  -1 if the keeper goes on (a new
 * server is due), else the keeper's exit status.
 */
static int
keeper_reap(struct keeper *k, int st)
{
	struct timespec now;
	pid_t pid = k->server;
	long long lived;
	char cause[64];

	/* Whatever it said before it died counts. */
	if (k->chan >= 0)
		keeper_read(k, MSG_DONTWAIT);
	if (k->chan >= 0) {
		close(k->chan);
		k->chan = -1;
	}
	k->server = 0;
	if (k->handover && k->state->fdstore) {
		log_info("keeper: server pid %ld handed the FUSE connection "
		    "and the pool to the service manager; exiting", (long)pid);
		return KEEPER_EXIT_HANDOVER;
	}
	if (k->stopped || k->fds[KFD_FUSE] < 0) {
		keeper_unstore(k);
		return keeper_exit_status(st);
	}

	clock_gettime(CLOCK_MONOTONIC, &now);
	lived = keeper_ms(&k->started, &now);
	if (WIFSIGNALED(st))
		snprintf(cause, sizeof(cause), "was killed by signal %d (%s)",
		    WTERMSIG(st), strsignal(WTERMSIG(st)));
	else
		snprintf(cause, sizeof(cause), "exited with status %d",
		    WEXITSTATUS(st));
	/*
	 * A server that got as far as serving was no crash loop: the next
	 * one starts at once, for swap waits on it.
	 */
	if (k->restart_asked && WIFEXITED(st) && WEXITSTATUS(st) == 0)
		k->backoff = 0;
	else if (k->state->served || lived >= KEEPER_STABLE)
		k->backoff = 0;
	else if (k->backoff == 0)
		k->backoff = KEEPER_BACKOFF_MIN;
	else if ((k->backoff *= 2) > KEEPER_BACKOFF_MAX)
		k->backoff = KEEPER_BACKOFF_MAX;
	k->state->restarts++;
	k->state->last_pid = pid;
	k->state->last_status = st;
	k->state->last_asked = k->restart_asked;
	if (k->restart_asked)
		log_info("keeper: server pid %ld %s after a restart was asked "
		    "for; starting a new one (restart %u)", (long)pid, cause,
		    k->state->restarts);
	else
		log_warnx("keeper: server pid %ld %s; starting a new one in "
		    "%u ms (restart %u)", (long)pid, cause, k->backoff,
		    k->state->restarts);
	k->next_start = now;
	k->next_start.tv_sec += k->backoff / 1000;
	k->next_start.tv_nsec += (long)(k->backoff % 1000) * 1000000;
	if (k->next_start.tv_nsec >= 1000000000) {
		k->next_start.tv_sec++;
		k->next_start.tv_nsec -= 1000000000;
	}
	return -1;
}

/*
 * The path zsd was started as, made absolute (a symbolic link, as for
 * alternatives, is kept: it may point elsewhere after an upgrade).  Not
 * /proc/self/exe, which stays the old file once the new one replaces it;
 * that only if argv[0] cannot be found.  0 or -1.
 */
static int
keeper_find_exe(const char *argv0, char *out, size_t len)
{
	char cwd[PATH_MAX], dir[PATH_MAX];
	const char *path = getenv("PATH"), *p, *colon;
	ssize_t n;
	int w;

	if (strchr(argv0, '/') != NULL) {
		if (argv0[0] == '/')
			w = snprintf(out, len, "%s", argv0);
		else if (getcwd(cwd, sizeof(cwd)) != NULL)
			w = snprintf(out, len, "%s/%s", cwd, argv0);
		else
			w = -1;
		if (w > 0 && (size_t)w < len && access(out, X_OK) == 0)
			return 0;
	} else if (path != NULL) {
		for (p = path; ; p = colon + 1) {
			colon = strchr(p, ':');
			n = colon != NULL ? colon - p : (ssize_t)strlen(p);
			snprintf(dir, sizeof(dir), "%.*s", (int)n, n > 0 ? p :
			    ".");
			w = snprintf(out, len, "%s/%s", dir, argv0);
			if (dir[0] == '/' && w > 0 && (size_t)w < len &&
			    access(out, X_OK) == 0)
				return 0;
			if (colon == NULL)
				break;
		}
	}
	n = readlink("/proc/self/exe", out, len - 1);
	if (n <= 0 || (size_t)n >= len - 1)
		return -1;
	out[n] = '\0';
	return 0;
}

/* Make the arena and the state, lock memory; 0 or -1 (logged). */
static int
keeper_setup(struct keeper *k)
{
	const char *env;
	char why[160];
	bool noswap;
	FILE *f;
	int r;

	if (keeper_find_exe(k->argv[0], k->exe, sizeof(k->exe)) != 0) {
		log_warn("keeper: cannot tell where the zsd binary is");
		return -1;
	}
	/* A number for the servers' channel that nothing else will take. */
	if ((k->chan_no = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
		log_warn("keeper: /dev/null");
		return -1;
	}
	/* $FDSTORE (systemd 254, or zsd.service): the store's size. */
	env = getenv("FDSTORE");
	k->fdstore = getenv("NOTIFY_SOCKET") != NULL && env != NULL &&
	    strtol(env, NULL, 10) >= KFD_MAX;
	k->fds[KFD_ARENA] = k->fds[KFD_STATE] = k->fds[KFD_FUSE] = -1;
	k->chan = -1;
	k->start = keeper_starttime(getpid());
	if ((r = keeper_adopt(k)) < 0)
		return -1;
	if (r > 0)
		goto adopted;
	/* KFD_ARENA and KFD_STATE, in that order. */
	if (memfile_open(keeper_fdnames, k->fds, KFD_STATE + 1, &noswap, why,
	    sizeof(why)) != 0) {
		log_warn("keeper: no shared memory for the pool");
		return -1;
	}
	if (!noswap)
		log_warnx("keeper: the pool is in a memfd, which the kernel "
		    "may swap out while no server has it locked: a new server "
		    "would then hang on it (%s)", why);
	if (ftruncate(k->fds[KFD_STATE], sizeof(struct zsd_state)) != 0) {
		log_warn("keeper: sizing the state file");
		return -1;
	}
	k->state = mmap(NULL, sizeof(struct zsd_state), PROT_READ |
	    PROT_WRITE, MAP_SHARED, k->fds[KFD_STATE], 0);
	if (k->state == MAP_FAILED) {
		log_warn("keeper: mapping the state file");
		return -1;
	}
	k->state->magic = KEEPER_STATE_MAGIC;
	k->state->version = KEEPER_STATE_VERSION;
	k->state->noswap = noswap;
	(void)keeper_store(k, KFD_ARENA);
	(void)keeper_store(k, KFD_STATE);
adopted:

	if (mlockall(MCL_CURRENT | MCL_FUTURE) != 0)
		log_warn("keeper: mlockall: its memory could be swapped out");
	/* Raising it needs CAP_SYS_RESOURCE: without it, a warning. */
	if ((f = fopen("/proc/self/oom_score_adj", "w")) == NULL ||
	    (fputs("-1000\n", f) == EOF) | (fclose(f) == EOF))
		log_warn("keeper: oom_score_adj -1000: the OOM killer may "
		    "pick it");
	return 0;
}

int
keeper_run(char **argv)
{
	struct keeper *k = &keeper;
	struct sigaction sa;
	struct timespec now, wait, *timeout;
	struct pollfd pfd;
	sigset_t block, during;
	char num[16];
	unsigned int i;
	int st, r, error;
	pid_t pid;

	k->argv = argv;
	if (keeper_setup(k) != 0)
		return 1;
	snprintf(num, sizeof(num), "%d", k->chan_no);
	if (setenv(KEEPER_ENV, num, 1) != 0)
		return 1;

	sigemptyset(&block);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = keeper_on_signal;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < 4; i++) {
		sigaddset(&block, keeper_signals[i]);
		sigaction(keeper_signals[i], &sa, NULL);
	}
	signal(SIGPIPE, SIG_IGN);
	sigprocmask(SIG_BLOCK, &block, &during);
	for (i = 0; i < 4; i++)
		sigdelset(&during, keeper_signals[i]);

	clock_gettime(CLOCK_MONOTONIC, &k->next_start);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		timeout = NULL;
		if (k->server == 0) {
			if (keeper_ms(&now, &k->next_start) <= 0) {
				if ((error = keeper_spawn(k)) != 0) {
					errno = -error;
					log_warn("keeper: starting a server");
					k->next_start = now;
					k->next_start.tv_sec += 1;
				}
			}
			if (k->server == 0) {
				long long ms = keeper_ms(&now, &k->next_start);

				if (ms < 0)
					ms = 0;
				wait.tv_sec = ms / 1000;
				wait.tv_nsec = (ms % 1000) * 1000000;
				timeout = &wait;
			}
		}
		pfd.fd = k->chan;
		pfd.events = POLLIN;
		pfd.revents = 0;
		r = ppoll(&pfd, k->chan >= 0 ? 1 : 0, timeout, &during);
		if (r > 0 && pfd.revents != 0)
			keeper_read(k, 0);
		for (i = 0; i < 3; i++) {
			if (!keeper_pending[i])
				continue;
			keeper_pending[i] = 0;
			if (keeper_signals[i] != SIGHUP)
				k->stop_sig = keeper_signals[i];
			if (k->server > 0)
				kill(k->server, keeper_signals[i]);
		}
		if (keeper_pending[3]) {
			keeper_pending[3] = 0;
			while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
				if (pid != k->server)
					continue;
				if ((r = keeper_reap(k, st)) >= 0)
					return r;
			}
		}
	}
}

/* --- the server's side --------------------------------------------------- */

/* Did a service manager pass this process fds ($LISTEN_FDS)? */
bool
keeper_listen_fds(void)
{
	const char *pid = getenv("LISTEN_PID"), *nfds = getenv("LISTEN_FDS");

	return pid != NULL && nfds != NULL &&
	    strtol(pid, NULL, 10) == getpid() && strtol(nfds, NULL, 10) > 0;
}

/* Was this process started by a keeper? */
bool
keeper_started_us(void)
{
	const char *env = getenv(KEEPER_ENV);

	return env != NULL && env[0] != '\0';
}

/*
 * Take what the keeper passes: the arena, the state, and the FUSE fd of
 * a predecessor.  0 (nothing to take without a keeper), or -errno.
 */
int
keeper_attach(struct zsd *z)
{
	const char *env = getenv(KEEPER_ENV);
	struct keeper_msg m;
	struct zsd_state *s;
	int fds[KFD_MAX], r, fd;
	char *end;
	long n;

	z->keeper_fd = z->arena_fd = z->fuse_fd = -1;
	if (env == NULL || env[0] == '\0')
		return 0;
	n = strtol(env, &end, 10);
	if (*end != '\0' || n < 3 || n > 1 << 20)
		return -EBADF;
	fd = (int)n;
	unsetenv(KEEPER_ENV);
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
		return -errno;
	z->keeper_fd = fd;
	if ((r = keeper_recv(fd, &m, fds, KFD_MAX, 0)) <= 0)
		return r == 0 ? -EPIPE : r;
	if (m.type != KEEPER_FDS || m.nr_fds < 2) {
		while (m.nr_fds > 0)
			close(fds[--m.nr_fds]);
		return -EPROTO;
	}
	s = mmap(NULL, sizeof(*s), PROT_READ | PROT_WRITE, MAP_SHARED,
	    fds[KFD_STATE], 0);
	close(fds[KFD_STATE]);
	if (s == MAP_FAILED)
		return -errno;
	if (s->magic != KEEPER_STATE_MAGIC ||
	    s->version != KEEPER_STATE_VERSION) {
		munmap(s, sizeof(*s));
		return -EPROTO;
	}
	z->state = s;
	s->server_pid = getpid();
	s->server_start = keeper_starttime(getpid());
	z->arena_fd = fds[KFD_ARENA];
	if (m.nr_fds > KFD_FUSE)
		z->fuse_fd = fds[KFD_FUSE];
	if (z->fuse_fd < 0)
		return 0;
	z->took_over = true;

	/* A successor: what its predecessor left. */
	if (s->last_pid == 0)
		log_info("taking over from a server whose keeper is gone "
		    "(restart %u)", s->restarts);
	else if (WIFSIGNALED(s->last_status))
		log_info("taking over from server pid %ld, killed by signal "
		    "%d (restart %u)", (long)s->last_pid,
		    WTERMSIG(s->last_status), s->restarts);
	else
		log_info("taking over from server pid %ld, which exited with "
		    "status %d%s (restart %u)", (long)s->last_pid,
		    WEXITSTATUS(s->last_status), s->last_asked ?
		    " to be replaced" : "", s->restarts);
	if (s->swap_on) {
		memcpy(z->loop_dev, s->loop_dev, sizeof(z->loop_dev));
		z->loop_dev[sizeof(z->loop_dev) - 1] = '\0';
		z->swap = SWAP_ON;
		if ((z->loop_fd = open(z->loop_dev, O_RDWR | O_CLOEXEC)) < 0)
			log_warn("%s: it stays swap, but will not be detached "
			    "at stop", z->loop_dev);
	}
	return 0;
}

/* Server, loop: the channel is readable, which means the keeper is gone. */
static void
keeper_on_channel(evutil_socket_t fd, short what, void *arg)
{
	struct zsd *z = arg;
	struct keeper_msg m;
	int fds[KFD_MAX], r;

	r = keeper_recv(fd, &m, fds, KFD_MAX, MSG_DONTWAIT);
	if (r == -EAGAIN)
		return;
	if (r > 0) {
		while (m.nr_fds > 0)
			close(fds[--m.nr_fds]);
		return;
	}
	event_free(z->keeper_ev);
	z->keeper_ev = NULL;
	close(z->keeper_fd);
	z->keeper_fd = -1;
	if (z->state->fdstore) {
		log_warnx("the keeper (pid %ld) is gone; the service manager "
		    "holds the FUSE connection and the pool",
		    (long)z->state->keeper_pid);
		if (z->restarting || keeper_server_restart(z, true) == 0)
			return;
		log_warnx("not handing over while swap is turned on or off or "
		    "zsd stops");
		return;
	}
	log_warnx("the keeper (pid %ld) is gone: if this server dies now, "
	    "its mount and every swapped page are lost",
	    (long)z->state->keeper_pid);
}

/*
 * Server: has the keeper gone?  (Its channel hangs up; the loop may not
 * have seen it yet.)
 */
bool
keeper_gone(struct zsd *z)
{
	struct pollfd pfd;

	if (z->state == NULL)
		return false;			/* there was none */
	if (z->keeper_fd < 0)
		return true;
	pfd.fd = z->keeper_fd;
	pfd.events = POLLRDHUP;
	pfd.revents = 0;
	return poll(&pfd, 1, 0) > 0 &&
	    (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

/*
 * Server, once the loop catches the stop signals: let through those the
 * keeper had blocked, and watch the channel.
 */
void
keeper_watch(struct zsd *z, int (*restart)(struct zsd *z, bool handover))
{
	sigset_t set;

	keeper_server_restart = restart;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	if (z->keeper_fd < 0)
		return;
	z->keeper_ev = event_new(z->base, z->keeper_fd, EV_READ | EV_PERSIST,
	    keeper_on_channel, z);
	if (z->keeper_ev == NULL || event_add(z->keeper_ev, NULL) != 0)
		log_warnx("cannot watch the channel to the keeper");
}

/* Server: the /dev/fuse fd it mounted, for the keeper to hold. */
void
keeper_give_fuse(struct zsd *z, int fd)
{
	int error;

	if (z->keeper_fd < 0)
		return;
	if ((error = keeper_send(z->keeper_fd, KEEPER_FUSE, &fd, 1)) != 0) {
		errno = -error;
		log_warn("passing the FUSE connection to the keeper: if this "
		    "server dies, the mount and its pages are lost");
	}
}

/* Server, at exit: stopped cleanly (the keeper exits too). */
void
keeper_stopped(struct zsd *z)
{
	if (z->keeper_fd >= 0)
		(void)keeper_send(z->keeper_fd, KEEPER_STOPPED, NULL, 0);
}

/* Server: exiting to be replaced; the keeper starts the next one. */
int
keeper_restart(struct zsd *z)
{
	if (z->keeper_fd < 0)
		return -ENOTCONN;
	return keeper_send(z->keeper_fd, KEEPER_RESTART, NULL, 0);
}

/*
 * Server: exiting, and the service manager's fd store keeps the
 * connection and the pool for the next zsd: the keeper exits too.  0 (a
 * keeper already gone counts), -EOPNOTSUPP without a store, or -errno.
 */
int
keeper_handover(struct zsd *z)
{
	int error;

	if (z->state == NULL || !z->state->fdstore)
		return -EOPNOTSUPP;
	if (z->keeper_fd < 0)
		return 0;
	error = keeper_send(z->keeper_fd, KEEPER_HANDOVER, NULL, 0);
	return error == -EPIPE || error == -ECONNRESET ? 0 : error;
}

/* Server, loop: what a successor needs to know about swap. */
void
keeper_save_swap(struct zsd *z)
{
	struct zsd_state *s = z->state;

	if (s == NULL)
		return;
	if (z->swap == SWAP_ON) {
		memcpy(s->loop_dev, z->loop_dev, sizeof(s->loop_dev));
		s->swap_on = 1;
	} else {
		s->swap_on = 0;
	}
}

/*
 * Server, FUSE thread (fs.h), before INIT is answered: the request the
 * kernel sent, for successors.  Nothing else in this process touches
 * these fields of the state.
 */
void
keeper_save_init(struct zsd *z, const void *buf, size_t len)
{
	struct zsd_state *s = z->state;

	if (s == NULL || len > sizeof(s->init))
		return;
	s->init_len = 0;
	memcpy(s->init, buf, len);
	s->init_len = (uint32_t)len;
}

/*
 * Server, FUSE thread: the connection is served by io_uring, entries this
 * big.  Nothing else in this process touches these fields of the state.
 */
void
keeper_save_ring(struct zsd *z, size_t payload)
{
	struct zsd_state *s = z->state;

	if (s == NULL)
		return;
	s->uring_payload = (uint32_t)payload;
	s->uring = 1;
}
