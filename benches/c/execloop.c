/*
 * The yardstick for the storm engine: the least a C program must do to run
 * <execs> execs of <path> on each of <workers> processes (fork or vfork,
 * execve, waitpid; or glibc's posix_spawn and waitpid, the engine's other
 * spawn method with its own per-spawn cost). Or, for the hot method's
 * trigger, <execs> calls of execve("", NULL, NULL) on each worker, which
 * fail at once with ENOENT (<path> is then unused). Prints the wall time in
 * nanoseconds, from the release of the workers, all forked and waiting, to
 * the last one done (its targets reaped): what the engine's clock spans too.
 * Usage: execloop <fork|vfork|posix_spawn|fire> <workers> <execs> <path>
 */
#include <linux/futex.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Shared by the workers: how many wait, whether they may go, how many are done. */
struct gate {
	atomic_uint ready;
	atomic_uint open;
	atomic_uint done;
};

static void futex(atomic_uint *word, int op, unsigned int value)
{
	syscall(SYS_futex, word, op, value, NULL, NULL, 0);
}

enum spawn { FORK, VFORK, POSIX_SPAWN, FIRE };

/* A worker leaves, failed or not, saying it is done (the last wakes main). */
static void finish(struct gate *gate, int workers, int code)
{
	if (atomic_fetch_add(&gate->done, 1) + 1 == (unsigned int)workers)
		futex(&gate->done, FUTEX_WAKE, 1);
	_exit(code);
}

static void worker(struct gate *gate, int workers, enum spawn how, long execs, char *path)
{
	char *argv[] = { path, NULL };
	char *envp[] = { NULL };

	atomic_fetch_add(&gate->ready, 1);
	futex(&gate->ready, FUTEX_WAKE, 1);
	while (!atomic_load(&gate->open))
		futex(&gate->open, FUTEX_WAIT, 0);

	for (long i = 0; i < execs; i++) {
		pid_t pid;

		if (how == FIRE) {
			execve("", argv, envp);
			continue;
		}
		if (how == POSIX_SPAWN) {
			if (posix_spawn(&pid, path, NULL, NULL, argv, envp) != 0)
				finish(gate, workers, 1);
			waitpid(pid, NULL, 0);
			continue;
		}
		pid = how == VFORK ? vfork() : fork();

		if (pid == 0) {
			execve(path, argv, envp);
			_exit(127);
		}
		if (pid < 0)
			finish(gate, workers, 1);
		waitpid(pid, NULL, 0);
	}
	finish(gate, workers, 0);
}

int main(int argc, char **argv)
{
	struct timespec start, end;
	int status, failed = 0;
	unsigned int reaped = 0;

	if (argc != 5) {
		fprintf(stderr, "usage: %s <fork|vfork|posix_spawn|fire> <workers> <execs> <path>\n",
			argv[0]);
		return 2;
	}
	enum spawn how = strcmp(argv[1], "vfork") == 0	     ? VFORK :
			 strcmp(argv[1], "posix_spawn") == 0 ? POSIX_SPAWN :
			 strcmp(argv[1], "fire") == 0	     ? FIRE :
							       FORK;
	int workers = atoi(argv[2]);
	long execs = atol(argv[3]);

	struct gate *gate = mmap(NULL, sizeof(*gate), PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (gate == MAP_FAILED)
		return 1;
	for (int w = 0; w < workers; w++)
		if (fork() == 0)
			worker(gate, workers, how, execs, argv[4]);
	for (unsigned int seen; (seen = atomic_load(&gate->ready)) < (unsigned int)workers;)
		futex(&gate->ready, FUTEX_WAIT, seen);
	clock_gettime(CLOCK_MONOTONIC, &start);
	atomic_store(&gate->open, 1);
	futex(&gate->open, FUTEX_WAKE, workers);
	/* Every 100 ms, reap: a worker that died without finishing (killed)
	 * fails the run rather than leaving it waiting. */
	for (unsigned int seen; (seen = atomic_load(&gate->done)) < (unsigned int)workers;) {
		struct timespec tick = { 0, 100000000 };

		syscall(SYS_futex, &gate->done, FUTEX_WAIT, seen, &tick, NULL, 0);
		while (waitpid(-1, &status, WNOHANG) > 0) {
			reaped++;
			failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
		}
		if (reaped > atomic_load(&gate->done)) {
			failed = 1;
			break;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &end);
	while (wait(&status) > 0)
		failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;

	printf("%lld\n", (long long)(end.tv_sec - start.tv_sec) * 1000000000LL +
				 (end.tv_nsec - start.tv_nsec));
	return failed;
}
