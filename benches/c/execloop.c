/*
 * The yardstick for the storm engine: the least a C program must do to run
 * <execs> execs of <path> on each of <workers> processes (fork or vfork,
 * execve, waitpid; or glibc's posix_spawn and waitpid, the engine's other
 * spawn method with its own per-spawn cost). Or, for the hot method's
 * trigger, <execs> calls of execve("", NULL, NULL) on each worker, which
 * fail at once with ENOENT (<path> is then unused). Prints the wall time in
 * nanoseconds.
 * Usage: execloop <fork|vfork|posix_spawn|fire> <workers> <execs> <path>
 */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum spawn { FORK, VFORK, POSIX_SPAWN, FIRE };

static void worker(enum spawn how, long execs, char *path)
{
	char *argv[] = { path, NULL };
	char *envp[] = { NULL };

	for (long i = 0; i < execs; i++) {
		pid_t pid;

		if (how == FIRE) {
			execve("", argv, envp);
			continue;
		}
		if (how == POSIX_SPAWN) {
			if (posix_spawn(&pid, path, NULL, NULL, argv, envp) != 0)
				_exit(1);
			waitpid(pid, NULL, 0);
			continue;
		}
		pid = how == VFORK ? vfork() : fork();

		if (pid == 0) {
			execve(path, argv, envp);
			_exit(127);
		}
		if (pid < 0)
			_exit(1);
		waitpid(pid, NULL, 0);
	}
	_exit(0);
}

int main(int argc, char **argv)
{
	struct timespec start, end;
	int status, failed = 0;

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

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (int w = 0; w < workers; w++)
		if (fork() == 0)
			worker(how, execs, argv[4]);
	while (wait(&status) > 0)
		failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
	clock_gettime(CLOCK_MONOTONIC, &end);

	printf("%lld\n", (long long)(end.tv_sec - start.tv_sec) * 1000000000LL +
				 (end.tv_nsec - start.tv_nsec));
	return failed;
}
