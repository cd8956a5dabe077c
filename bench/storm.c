// SPDX-License-Identifier: Apache-2.0
/*
 * The exec storm of the benchmark (bench/run.mjs compiles it with clang -O2).
 *
 *   storm burst <workers> <count> <program> [args...]
 *       count spawns split over worker processes, each spawning and reaping as fast as it can;
 *       the program gets the extra args (bench/run.mjs passes a large argv to fill the ring with
 *       realistic events).
 *   storm rate <per-second> <count> <program> [args...]
 *       one spawn every 1/per-second s on an absolute clock, from one process; the program's
 *       argv[1] is the CLOCK_REALTIME ns at which the spawn started, so a consumer of the exec
 *       events can compute exec-to-visible latency from the event alone.
 *
 * Prints one JSON line: {"execs": successful spawns reaped with status 0, "failed": the rest,
 * "seconds": wall time of the storm, "startNs"/"endNs": CLOCK_REALTIME bounds}.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

struct tally {
	long execs;
	long failed;
};

static long long now_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* One spawn of argv[0], reaped: 1 when it ran and exited 0. posix_spawn is glibc's
 * clone(CLONE_VM|CLONE_VFORK): the storm measures exec, not the copying of a page table. */
static int spawn_one(char *const argv[])
{
	pid_t pid;
	int status;

	if (posix_spawn(&pid, argv[0], NULL, NULL, argv, environ) != 0)
		return 0;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return 0;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void burst(int workers, long count, char *const argv[], struct tally *shared)
{
	for (int w = 0; w < workers; w++) {
		long share = count / workers + (w < count % workers ? 1 : 0);
		pid_t pid = fork();

		if (pid < 0) {
			perror("fork");
			exit(1);
		}
		if (pid == 0) {
			struct tally *mine = &shared[w];

			for (long i = 0; i < share; i++) {
				if (spawn_one(argv))
					mine->execs++;
				else
					mine->failed++;
			}
			_exit(0);
		}
	}
	for (int w = 0; w < workers; w++)
		wait(NULL);
}

/* argv[1] is rewritten before every spawn with the spawn's wall-clock time. */
static void rate(long per_second, long count, char **argv, struct tally *t)
{
	long long period = 1000000000LL / per_second;
	long long next = now_ns(CLOCK_MONOTONIC);
	char stamp[24];

	argv[1] = stamp;
	for (long i = 0; i < count; i++) {
		struct timespec ts = {.tv_sec = next / 1000000000LL,
				      .tv_nsec = next % 1000000000LL};

		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
			;
		snprintf(stamp, sizeof(stamp), "%lld", now_ns(CLOCK_REALTIME));
		if (spawn_one(argv))
			t->execs++;
		else
			t->failed++;
		next += period;
	}
}

int main(int argc, char **argv)
{
	if (argc < 5 || (strcmp(argv[1], "burst") && strcmp(argv[1], "rate"))) {
		fprintf(stderr, "usage: storm burst <workers> <count> <program> [args...]\n"
				"       storm rate <per-second> <count> <program> [args...]\n");
		return 2;
	}
	int is_burst = strcmp(argv[1], "burst") == 0;
	long n = atol(argv[2]), count = atol(argv[3]);
	if (n < 1 || count < 1 || (is_burst && n > 64)) {
		fprintf(stderr, "storm: workers (1-64), rate and count must be positive\n");
		return 2;
	}
	/* The program's argv: argv[4..], with a slot for the time stamp in rate mode. */
	int extra = argc - 5;
	char **child = calloc((size_t)extra + 3, sizeof(char *));
	if (!child) {
		perror("calloc");
		return 1;
	}
	child[0] = argv[4];
	int at = 1;
	if (!is_burst)
		child[at++] = NULL; /* filled by rate() */
	for (int i = 0; i < extra; i++)
		child[at++] = argv[5 + i];
	child[at] = NULL;

	int slots = is_burst ? (int)n : 1;
	struct tally *shared = mmap(NULL, sizeof(struct tally) * slots, PROT_READ | PROT_WRITE,
				    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	memset(shared, 0, sizeof(struct tally) * slots);

	long long start = now_ns(CLOCK_MONOTONIC), start_real = now_ns(CLOCK_REALTIME);
	if (is_burst)
		burst((int)n, count, child, shared);
	else
		rate(n, count, child, shared);
	long long end = now_ns(CLOCK_MONOTONIC), end_real = now_ns(CLOCK_REALTIME);

	struct tally total = {0, 0};
	for (int i = 0; i < slots; i++) {
		total.execs += shared[i].execs;
		total.failed += shared[i].failed;
	}
	printf("{\"execs\": %ld, \"failed\": %ld, \"seconds\": %.6f, \"startNs\": %lld, \"endNs\": "
	       "%lld}\n",
	       total.execs, total.failed, (end - start) / 1e9, start_real, end_real);
	return 0;
}
