/* bare: the "bare posix_spawn loop" floor column of the peer benchmark.
 *
 *   bare N -- /path/to/child [args...]
 *
 * The least any supervisor must do, so that the numbers of the real supervisors can be read
 * against it: start N instances of the command with posix_spawn (glibc does it with
 * clone(CLONE_VM|CLONE_VFORK) + exec, the cheapest way), then block in waitpid(-1) and, when an
 * instance exits for any reason, respawn it at once in the same slot. No config, no logging,
 * no timers, no polling, no bookkeeping beyond one pid per slot.
 *
 * There is deliberately NO backoff and no give-up: a crashing child is respawned as fast as the
 * machine allows. This is a floor for measurements only, not something to supervise with.
 *
 * SIGTERM/SIGINT: the handler sends SIGTERM to every instance and sets a flag; the main loop
 * then stops respawning, reaps until no child is left (waitpid -> ECHILD) and exits 0. Killing
 * from the handler (rather than only setting a flag for the loop) has no lost-wake-up race with
 * the blocking waitpid: a signal that lands just before waitpid is entered has already sent
 * the TERMs, so waitpid returns as the instances exit. A child spawned while the signal lands
 * is covered by re-checking the flag after its pid is stored. (The one theoretical window: a
 * pid reaped by waitpid but not yet cleared from its slot, reused by some other process within
 * those few instructions.)
 *
 * Children get the environment of bare, an empty signal mask and default dispositions for the
 * signals bare handles (POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF). Output: errors only,
 * to stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static volatile sig_atomic_t stopping;
static volatile sig_atomic_t *slots; /* pid of each instance, 0 = none */
static long nslots;
static char **cmd;
static posix_spawnattr_t attr;

static void on_stop(int sig) {
    (void)sig;
    int saved = errno;
    stopping = 1;
    for (long i = 0; i < nslots; i++) {
        pid_t p = (pid_t)slots[i];
        if (p > 0) kill(p, SIGTERM);
    }
    errno = saved;
}

static void spawn_slot(long i) {
    pid_t pid;
    int rc = posix_spawn(&pid, cmd[0], NULL, &attr, cmd, environ);
    if (rc != 0) {
        fprintf(stderr, "bare: posix_spawn %s (slot %ld): %s\n", cmd[0], i, strerror(rc));
        return; /* slot stays empty; with no child left, waitpid gives ECHILD and bare exits */
    }
    slots[i] = (sig_atomic_t)pid;
    if (stopping) kill(pid, SIGTERM); /* the handler may have run before the pid was stored */
}

static int usage(void) {
    fprintf(stderr, "usage: bare N -- /path/to/child [args...]\n");
    return 2;
}

int main(int argc, char **argv) {
    if (argc < 4 || strcmp(argv[2], "--") != 0 || argv[3][0] == '\0') return usage();
    char *end;
    errno = 0;
    long n = strtol(argv[1], &end, 10);
    if (errno || end == argv[1] || *end || n < 1 || n > 1000000) return usage();
    cmd = argv + 3;

    slots = calloc((size_t)n, sizeof *slots);
    if (!slots) {
        perror("bare: calloc");
        return 1;
    }
    nslots = n;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigfillset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: waitpid returns EINTR */
    if (sigaction(SIGTERM, &sa, NULL) || sigaction(SIGINT, &sa, NULL)) {
        perror("bare: sigaction");
        return 1;
    }

    sigset_t mask, dflt;
    sigemptyset(&mask);
    sigemptyset(&dflt);
    sigaddset(&dflt, SIGTERM);
    sigaddset(&dflt, SIGINT);
    int rc = posix_spawnattr_init(&attr);
    if (!rc) rc = posix_spawnattr_setsigmask(&attr, &mask);
    if (!rc) rc = posix_spawnattr_setsigdefault(&attr, &dflt);
    if (!rc) rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (rc) {
        fprintf(stderr, "bare: posix_spawnattr: %s\n", strerror(rc));
        return 1;
    }

    for (long i = 0; i < n && !stopping; i++) spawn_slot(i);

    for (;;) {
        int st;
        pid_t p = waitpid(-1, &st, 0);
        if (p < 0) {
            if (errno == EINTR) continue;
            if (errno == ECHILD) break;
            perror("bare: waitpid");
            return 1;
        }
        long i = 0;
        while (i < n && (pid_t)slots[i] != p) i++;
        if (i == n) continue; /* not one of ours (cannot happen: we only spawn instances) */
        slots[i] = 0;
        if (!stopping) spawn_slot(i);
    }
    if (!stopping) {
        fprintf(stderr, "bare: no instance left running\n");
        return 1;
    }
    return 0;
}
