// SPDX-License-Identifier: GPL-2.0
/*
 * chaos.c - nb_fuzz's chaos files: the shared ranges all threads and forked children of a
 * process hammer, descriptors passed to the neighbour process (SCM_RIGHTS), forks.
 */
#include "fuzz.h"

/* ---- chaos files: shared ranges, fds passed between processes, forks ---------------------- */

void op_scm(void)
{
	char c = 'x';
	struct iovec iov = { &c, 1 };
	union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			      .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *cm;
	int fd;

	if (sock_next >= 0 && chance(50)) {
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		fd = chaos_fd[rnd_below(CHAOS_FDS)];
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
		if (sendmsg(sock_next, &msg, MSG_DONTWAIT) == 1)
			atomic_fetch_add(&G->scm_sent, 1);
		return;
	}
	if (sock_prev < 0)
		return;
	if (recvmsg(sock_prev, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) != 1)
		return;
	cm = CMSG_FIRSTHDR(&msg);
	if (!cm || cm->cmsg_type != SCM_RIGHTS)
		return;
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	atomic_fetch_add(&G->scm_recv, 1);
	/* Use the neighbour's file a little, then keep it in one of our chaos slots. */
	op_stats(fd);
	dup2(fd, chaos_fd[rnd_below(CHAOS_FDS)]);
	close(fd);
}

static struct shared_range *shared_get(void)
{
	struct shared_range *s = NULL;

	if (in_child) { /* a snapshot of the table; the parent keeps its mappings alive */
		struct shared_range *c = &shared[rnd_below(SHARED_MAX)];

		return c->used && !c->dead && c->map ? c : NULL;
	}
	pthread_mutex_lock(&shared_lock);
	for (int tries = 0; tries < 4; tries++) {
		struct shared_range *c = &shared[rnd_below(SHARED_MAX)];

		if (c->used && !c->dead) {
			c->users++;
			s = c;
			break;
		}
	}
	pthread_mutex_unlock(&shared_lock);
	return s;
}

static void shared_put(struct shared_range *s)
{
	char *map = NULL;
	uint64_t size = 0;

	if (in_child)
		return;
	pthread_mutex_lock(&shared_lock);
	if (--s->users == 0 && s->dead) {
		map = s->map;
		size = s->size;
		s->used = 0;
	}
	pthread_mutex_unlock(&shared_lock);
	if (map)
		munmap(map, size);
}

void op_sh_create(void)
{
	struct nb_alloc a = { 0 };
	int slot = rnd_below(CHAOS_FDS), reserve = chance(40);
	struct shared_range *s = NULL;
	void *p;

	/* ALLOC and mmap through one snapshot of the slot's file: another thread may dup2 a
	 * different file into the slot in between, and offsets are per file, so mapping the
	 * same offset of that other file would map someone else's block (seen in the long run
	 * as another block's 0x5a bytes). The mapping keeps the file alive once fd is closed. */
	int fd = dup(chaos_fd[slot]);

	if (fd < 0)
		return;
	a.size = rand_size();
	rand_policy(&a);
	a.flags = rand_flags(reserve) & ~NB_ALLOC_NOZERO;
	if (dev_ioctl(fd, reserve ? NB_IOC_RESERVE : NB_IOC_ALLOC, &a)) {
		close(fd);
		return;
	}
	p = mmap(NULL, a.alloc_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, a.offset);
	close(fd);
	count(OP_SH_CREATE, p == MAP_FAILED ? 1000 : 0);
	if (p == MAP_FAILED) /* the range was freed meanwhile */
		return;
	pthread_mutex_lock(&shared_lock);
	for (int i = 0; i < SHARED_MAX; i++)
		if (!shared[i].used) {
			s = &shared[i];
			*s = (struct shared_range){ .used = 1, .slot = slot, .fd = chaos_fd[slot],
						    .offset = a.offset, .size = a.alloc_size,
						    .tag = rnd() | 1, .map = p };
			break;
		}
	pthread_mutex_unlock(&shared_lock);
	if (!s)
		munmap(p, a.alloc_size); /* the file frees it at its last close */
}

/* Read/write tagged words of a shared range: each word holds 0 or tag ^ index, nothing else,
 * whatever migrations, faults and frees run concurrently. */
void op_sh_touch(void)
{
	struct shared_range *s = shared_get();
	int sig = 0;

	if (!s)
		return;
	TOUCH(sig, {
		for (int i = 0; i < 16; i++) {
			uint64_t w = rnd_below(s->size / 8);
			volatile uint64_t *p = (volatile uint64_t *)s->map + w;
			uint64_t v = *p;

			if (v && v != (s->tag ^ w)) {
				fail("shared-data", "range %#llx word %llu reads %#llx, want 0 or %#llx",
				     (unsigned long long)s->offset, (unsigned long long)w,
				     (unsigned long long)v, (unsigned long long)(s->tag ^ w));
				break;
			}
			if (chance(50))
				*p = s->tag ^ w;
		}
	});
	(void)sig; /* SIGBUS after a concurrent FREE is legitimate */
	shared_put(s);
}

void op_sh_migrate(void)
{
	struct shared_range *s = shared_get();
	struct nb_migrate m = { 0 };

	if (!s)
		return;
	m.offset = s->offset;
	m.node = rnd_below(nr_nodes);
	dev_ioctl(s->fd, NB_IOC_MIGRATE, &m);
	shared_put(s);
}

void op_sh_free(void)
{
	struct shared_range *s = shared_get();
	struct nb_free f = { 0 };

	if (!s)
		return;
	f.offset = s->offset;
	dev_ioctl(s->fd, NB_IOC_FREE, &f); /* racing threads: 0, ENOENT or EBUSY */
	shared_put(s);
}

void op_sh_retire(void)
{
	struct shared_range *s = shared_get();

	if (!s)
		return;
	pthread_mutex_lock(&shared_lock);
	s->dead = 1;
	pthread_mutex_unlock(&shared_lock);
	shared_put(s);
}

void op_chaos_ioctl(void)
{
	int fd = chaos_fd[rnd_below(CHAOS_FDS)];

	switch (rnd_below(6)) {
	case 0: op_raw_ioctl(fd); break;
	case 1: op_batch(fd, 0); break;
	case 2: op_bad_ptr(fd); break;
	case 3: op_stats(fd); break;
	case 4: op_version(fd); break;
	default: {
		struct nb_free f = { .offset = rnd_below(512) * PAGE };

		dev_ioctl(fd, NB_IOC_FREE, &f);
		break;
	}
	}
}

/* Child of a fork: a few chaos operations (no malloc: other threads may hold its lock), then
 * exit with whatever it holds, or die to a SIGKILL from the parent half-way. */
static void child_ops(void)
{
	int n = 1 + rnd_below(6);

	for (int i = 0; i < n; i++) {
		switch (rnd_below(5)) {
		case 0: op_sh_touch(); break;
		case 1: op_sh_migrate(); break;
		case 2: op_chaos_ioctl(); break;
		case 3: {
			struct nb_alloc a = { .size = rand_size(), .node = -1 };
			int fd = chaos_fd[rnd_below(CHAOS_FDS)];

			if (!dev_ioctl(fd, NB_IOC_ALLOC, &a)) {
				char *p = mmap(NULL, a.alloc_size, PROT_READ | PROT_WRITE,
					       MAP_SHARED, fd, a.offset);

				if (p != MAP_FAILED)
					memset(p, 0x5a, PAGE); /* exits with a mapping and a block */
			}
			break;
		}
		default: op_sh_free(); break;
		}
	}
	if (chance(30))
		kill(getpid(), SIGKILL);
	_exit(0);
}

void op_fork(void)
{
	pid_t pid;
	int st;

	self->rng ^= 0x5bd1e995;
	/* Fork under the table lock: another thread may be half-way through writing a
	 * shared-range entry, and the child must not inherit a torn one (new mapping, old
	 * tag), which its shared-touch would report as corrupt data. */
	pthread_mutex_lock(&shared_lock);
	pid = fork();
	pthread_mutex_unlock(&shared_lock);
	if (pid < 0)
		return;
	if (pid == 0) {
		in_child = 1;
		alarm(30);
		child_ops();
	}
	self->rng ^= 0x1234567;
	atomic_fetch_add(&G->forks, 1);
	if (chance(40)) {
		usleep(rnd_below(20000));
		kill(pid, SIGKILL);
		atomic_fetch_add(&G->kills, 1);
	}
	if (waitpid(pid, &st, 0) != pid) {
		fail("fork-child", "waitpid: %s", strerror(errno));
		return;
	}
	if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM)
		fail("fork-child", "child still running after 30 s (a handful of operations), killed by its alarm");
	else if (WIFSIGNALED(st) && WTERMSIG(st) != SIGKILL)
		fail("fork-child", "child died of signal %d", WTERMSIG(st));
	if (WIFEXITED(st) && WEXITSTATUS(st))
		fail("fork-child", "child exited %d", WEXITSTATUS(st));
}
