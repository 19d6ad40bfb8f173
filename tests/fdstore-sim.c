/*
 * fdstore-sim - the part of a service manager that zsd.service uses, for
 * tests/fdstore.sh: Type=notify with NotifyAccess=all, a file descriptor
 * store (FileDescriptorStoreMax=), Restart=always, KillMode=control-group
 * and SendSIGKILL=no, as systemd does them.
 *
 *	fdstore-sim [-n STATUS,...] [-r MS] [-x STOPCMD] DIR -- COMMAND
 *	    [ARG...]
 *
 * Runs COMMAND with $NOTIFY_SOCKET (DIR/notify) and $FDSTORE set.  Keeps
 * the fds sent with FDSTORE=1 under their FDNAME (one copy of a file sent
 * twice), drops those named with FDSTOREREMOVE=1.  It is the subreaper of
 * what COMMAND starts, so a process whose parent dies is its child, as a
 * process stays in a service's cgroup.  When the main process exits, it
 * sends SIGTERM to every other process left and waits for them; then,
 * MS milliseconds later (100), it starts COMMAND again with the kept fds
 * from fd 3 on, named in $LISTEN_FDNAMES ($LISTEN_FDS, $LISTEN_PID);
 * unless the main process exited with one of the -n statuses
 * (RestartPreventExitStatus=): then it stops, as below.
 *
 *	SIGTERM, SIGINT	stop: SIGTERM to every process; once all are gone,
 *			close the store and exit 0
 *	SIGUSR1		restart: run STOPCMD (sh -c) as ExecStop= runs,
 *			then as a stop, then start again with the store
 *
 * Each event is a line on stdout: "start PID NFDS", "ready PID",
 * "stored NAME", "removed NAME", "exit PID STATUS", "stopped".
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define STORE_MAX	16

struct stored {
	char	name[64];
	int	fd;
};

static struct stored	store[STORE_MAX];
static unsigned int	nr_stored;
static char		notify_path[108];
static char		**command;
static pid_t		main_pid;
static bool		no_restart[256];	/* -n: exit statuses */

static void
die(const char *what)
{
	fprintf(stderr, "fdstore-sim: %s: %s\n", what, strerror(errno));
	exit(2);
}

/* Is fd the same open file as one in the store already? */
static bool
store_has(int fd)
{
	unsigned int i;

	for (i = 0; i < nr_stored; i++)
		if (syscall(SYS_kcmp, getpid(), getpid(), KCMP_FILE,
		    store[i].fd, fd) == 0)
			return true;
	return false;
}

static void
store_add(const char *name, int fd)
{
	if (store_has(fd) || nr_stored == STORE_MAX) {
		close(fd);
		return;
	}
	snprintf(store[nr_stored].name, sizeof(store[0].name), "%s", name);
	store[nr_stored++].fd = fd;
	printf("stored %s\n", name);
}

static void
store_remove(const char *name)
{
	unsigned int i = 0;

	while (i < nr_stored) {
		if (strcmp(store[i].name, name) != 0) {
			i++;
			continue;
		}
		close(store[i].fd);
		store[i] = store[--nr_stored];
		printf("removed %s\n", name);
	}
}

/* The value of KEY= in a notification, in out; false if absent. */
static bool
notify_get(const char *msg, const char *key, char *out, size_t len)
{
	size_t klen = strlen(key);
	const char *p = msg, *end;

	for (; *p != '\0'; p = *end != '\0' ? end + 1 : end) {
		end = strchr(p, '\n');
		if (end == NULL)
			end = p + strlen(p);
		if (strncmp(p, key, klen) == 0 && p[klen] == '=') {
			snprintf(out, len, "%.*s", (int)(end - p - klen - 1),
			    p + klen + 1);
			return true;
		}
	}
	return false;
}

static void
notify_read(int sock)
{
	char buf[4096], name[64], v[16];
	union {
		struct cmsghdr	h;
		char		b[CMSG_SPACE(sizeof(int) * STORE_MAX) +
				  CMSG_SPACE(sizeof(struct ucred))];
	} u;
	struct iovec iov = { buf, sizeof(buf) - 1 };
	struct msghdr mh;
	struct cmsghdr *c;
	struct ucred cred = { 0, 0, 0 };
	int fds[STORE_MAX];
	unsigned int nr = 0, i, n;
	ssize_t len;

	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = u.b;
	mh.msg_controllen = sizeof(u.b);
	if ((len = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC)) < 0)
		return;
	buf[len] = '\0';
	for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET)
			continue;
		if (c->cmsg_type == SCM_CREDENTIALS)
			memcpy(&cred, CMSG_DATA(c), sizeof(cred));
		if (c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (unsigned int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (i = 0; i < n && nr < STORE_MAX; i++)
			memcpy(&fds[nr++], CMSG_DATA(c) + i * sizeof(int),
			    sizeof(int));
	}
	if (notify_get(buf, "READY", v, sizeof(v)) && strcmp(v, "1") == 0)
		printf("ready %ld\n", (long)cred.pid);
	if (!notify_get(buf, "FDNAME", name, sizeof(name)))
		snprintf(name, sizeof(name), "stored");
	if (notify_get(buf, "FDSTORE", v, sizeof(v)) && strcmp(v, "1") == 0)
		for (i = 0; i < nr; i++)
			store_add(name, fds[i]);
	else
		for (i = 0; i < nr; i++)
			close(fds[i]);
	if (notify_get(buf, "FDSTOREREMOVE", v, sizeof(v)) &&
	    strcmp(v, "1") == 0)
		store_remove(name);
}

static void
start(void)
{
	char names[STORE_MAX * 65], num[32];
	int high[STORE_MAX];
	unsigned int i;
	sigset_t none;
	pid_t pid;

	if ((pid = fork()) < 0)
		die("fork");
	if (pid > 0) {
		main_pid = pid;
		printf("start %ld %u\n", (long)pid, nr_stored);
		return;
	}
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* Out of the way first, then from 3 on. */
	for (i = 0; i < nr_stored; i++)
		if ((high[i] = fcntl(store[i].fd, F_DUPFD_CLOEXEC, 100)) < 0)
			_exit(127);
	names[0] = '\0';
	for (i = 0; i < nr_stored; i++) {
		if (dup2(high[i], 3 + (int)i) < 0)
			_exit(127);
		if (i > 0)
			strcat(names, ":");
		strcat(names, store[i].name);
	}
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDNAMES");
	if (nr_stored > 0) {
		snprintf(num, sizeof(num), "%u", nr_stored);
		setenv("LISTEN_FDS", num, 1);
		snprintf(num, sizeof(num), "%ld", (long)getpid());
		setenv("LISTEN_PID", num, 1);
		setenv("LISTEN_FDNAMES", names, 1);
	}
	setenv("NOTIFY_SOCKET", notify_path, 1);
	setenv("FDSTORE", "8", 1);
	execvp(command[0], command);
	_exit(127);
}

/*
 * SIGTERM to every child but the ExecStop= command, once each; how many
 * there were.
 */
static unsigned int
kill_children(pid_t *sent, unsigned int *nr_sent, pid_t spare)
{
	char path[64], buf[4096], *p, *end;
	unsigned int n = 0, i;
	ssize_t len;
	long pid;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%ld/children",
	    (long)getpid());
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len <= 0)
		return 0;
	buf[len] = '\0';
	for (p = buf; (pid = strtol(p, &end, 10)) > 0; p = end) {
		if (pid == spare)
			continue;
		n++;
		for (i = 0; i < *nr_sent; i++)
			if (sent[i] == pid)
				break;
		if (i < *nr_sent || *nr_sent == 64)
			continue;
		kill((pid_t)pid, SIGTERM);
		sent[(*nr_sent)++] = (pid_t)pid;
	}
	return n;
}

int
main(int argc, char **argv)
{
	struct sockaddr_un sun;
	struct pollfd pfd[2];
	struct signalfd_siginfo si;
	struct timespec delay = { 0, 100 * 1000 * 1000 };
	const char *stopcmd = NULL;
	pid_t sent[64], pid, stopcmd_pid = 0;
	unsigned int nr_sent = 0;
	bool stopping = false, draining = false;
	sigset_t set;
	int c, sock, sfd, one = 1, st;
	char *p, *end;
	long ms;

	while ((c = getopt(argc, argv, "n:r:x:")) != -1) {
		switch (c) {
		case 'n':
			for (p = optarg; *p != '\0'; p = *end ? end + 1 : end) {
				ms = strtol(p, &end, 10);
				if (ms >= 0 && ms < 256)
					no_restart[ms] = true;
			}
			break;
		case 'r':
			ms = strtol(optarg, NULL, 10);
			delay.tv_sec = ms / 1000;
			delay.tv_nsec = (ms % 1000) * 1000000;
			break;
		case 'x': stopcmd = optarg; break;
		default: return 2;
		}
	}
	if (argc - optind < 2)
		return 2;
	snprintf(notify_path, sizeof(notify_path), "%s/notify", argv[optind]);
	command = argv + optind + 1;
	setvbuf(stdout, NULL, _IOLBF, 0);

	if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
		die("PR_SET_CHILD_SUBREAPER");
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	if ((sfd = signalfd(-1, &set, SFD_CLOEXEC)) < 0)
		die("signalfd");
	if ((sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		die("socket");
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", notify_path);
	unlink(notify_path);
	if (bind(sock, (struct sockaddr *)&sun, sizeof(sun)) != 0)
		die(notify_path);
	if (setsockopt(sock, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) != 0)
		die("SO_PASSCRED");

	start();
	for (;;) {
		pfd[0].fd = sock;
		pfd[0].events = POLLIN;
		pfd[1].fd = sfd;
		pfd[1].events = POLLIN;
		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			die("poll");
		if (pfd[0].revents & POLLIN)
			notify_read(sock);
		if (!(pfd[1].revents & POLLIN) ||
		    read(sfd, &si, sizeof(si)) != sizeof(si))
			continue;
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			stopping = draining = true;
			break;
		case SIGUSR1:
			/* ExecStop= runs first; the rest waits for its end. */
			if (stopcmd != NULL && stopcmd_pid == 0 &&
			    (stopcmd_pid = fork()) == 0) {
				sigprocmask(SIG_UNBLOCK, &set, NULL);
				execl("/bin/sh", "sh", "-c", stopcmd, NULL);
				_exit(127);
			}
			draining = true;
			break;
		}
		/* SIGCHLD, or any signal: reap what ended. */
		while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
			st = WIFEXITED(st) ? WEXITSTATUS(st) :
			    128 + WTERMSIG(st);
			if (pid == stopcmd_pid) {
				printf("stopcmd %d\n", st);
				stopcmd_pid = 0;
				continue;
			}
			printf("exit %ld %d\n", (long)pid, st);
			if (pid == main_pid) {
				main_pid = 0;
				draining = true;
				if (st < 256 && no_restart[st])
					stopping = true;
			}
		}
		if (!draining || stopcmd_pid > 0)
			continue;
		/* Control-group: what is left gets SIGTERM, is waited for. */
		if (kill_children(sent, &nr_sent, stopcmd_pid) > 0)
			continue;
		while (notify_read(sock), poll(pfd, 1, 0) > 0 &&
		    (pfd[0].revents & POLLIN))
			;
		draining = false;
		nr_sent = 0;
		if (stopping) {
			while (nr_stored > 0)
				close(store[--nr_stored].fd);
			printf("stopped\n");
			return 0;
		}
		nanosleep(&delay, NULL);
		start();
	}
}
