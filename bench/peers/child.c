/* peerchild: the tiny child program that every supervisor in the peer benchmark runs.
 *
 * On start it takes a CLOCK_MONOTONIC timestamp (first thing in main, i.e. right after exec)
 * and sends one datagram "S <pid> <ppid> <ts_ns> <id>\n" to the harness's unix datagram
 * socket. Then, by mode:
 *   long   (default) sleep in sigsuspend() until SIGTERM/SIGINT/SIGHUP, then _exit(0);
 *          no timers, no wake-ups while idle.
 *   crash  exit(1) immediately (crash loop).
 *
 * Arguments: peerchild SOCKET_PATH [MODE [ID]]
 * Without an absolute SOCKET_PATH as first argument (runit and s6 exec ./run directly, a symlink
 * to this binary, so that no shell sits between the supervisor and the child; s6-supervise
 * passes the service name as argv[1]), it reads the same words from ./child.conf.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static void on_term(int sig) { (void)sig; _exit(0); }

int main(int argc, char **argv) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long long now_ns = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;

    char buf[1024] = {0};
    char sock_path[512] = {0}, mode[32] = "long", id[128] = "-";
    if (argc >= 2 && argv[1][0] == '/') {
        snprintf(sock_path, sizeof sock_path, "%s", argv[1]);
        if (argc >= 3) snprintf(mode, sizeof mode, "%s", argv[2]);
        if (argc >= 4) snprintf(id, sizeof id, "%s", argv[3]);
    } else {
        int fd = open("child.conf", O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            ssize_t n = read(fd, buf, sizeof buf - 1);
            close(fd);
            if (n > 0) {
                buf[n] = 0;
                if (sscanf(buf, "%511s %31s %127s", sock_path, mode, id) < 1) sock_path[0] = 0;
            }
        }
    }

    if (sock_path[0]) {
        int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (s >= 0) {
            struct sockaddr_un sa;
            memset(&sa, 0, sizeof sa);
            sa.sun_family = AF_UNIX;
            snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock_path);
            char msg[256];
            int len = snprintf(msg, sizeof msg, "S %d %d %lld %s\n", (int)getpid(), (int)getppid(), now_ns, id);
            /* Blocking send: if the harness's queue is full we wait (the timestamp is already
             * taken); if the harness is gone we get ECONNREFUSED/ENOENT and carry on. */
            for (int tries = 0; tries < 3; tries++) {
                if (sendto(s, msg, (size_t)len, 0, (struct sockaddr *)&sa, sizeof sa) >= 0) break;
                if (errno != EINTR) break;
            }
            close(s);
        }
    }

    if (strcmp(mode, "crash") == 0) return 1;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (;;) sigsuspend(&none);
}
