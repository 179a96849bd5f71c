// The launcher's fork/exec sequence (docs/platform-notes.md#the-childs-setup-sequence). Everything the child needs is prebuilt
// here in the parent into a child_plan; between fork and exec/body the child makes only
// async-signal-safe system calls and reports a failing step through a close-on-exec pipe.
#include "procsup/supervisor/launcher.hpp"

#include "procsup/sys/unique_fd.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#include <linux/sched.h>  // struct clone_args, CLONE_INTO_CGROUP

extern char** environ;

#if defined(__x86_64__)
// clone3 with a stack of our own: the child returns from the system call on that stack, where
// no C function frame exists, so it must not return into C code. This calls fn(arg) there and
// exits with its result, as glibc's internal clone3 does (which glibc 2.36 does not export).
// Registers: rdi = args, rsi = size, rdx = fn, rcx = arg; syscall clobbers rcx and r11 only.
extern "C" long procsup_clone3(clone_args* args, std::size_t size, int (*fn)(void*), void* arg);
asm(R"(
  .text
  .globl procsup_clone3
  .type procsup_clone3, @function
procsup_clone3:
  mov %rcx, %r8
  mov $435, %eax
  syscall
  test %rax, %rax
  jz 1f
  ret
1:
  xor %ebp, %ebp
  mov %r8, %rdi
  call *%rdx
  mov %eax, %edi
  mov $60, %eax
  syscall
  hlt
  .size procsup_clone3, .-procsup_clone3
  .section .note.GNU-stack,"",@progbits
  .text
)");
#endif

namespace procsup {
namespace {

// Child setup steps, in the order the child runs them. The number travels through the error pipe.
enum class step : std::int32_t {
  setsid, setrlimit, setgroups, setgid, setuid, prctl, parent_died, chdir, dup2, close_range, exec, mmap, unshare,
  cgroup,
};

const char* step_name(step s) {
  switch (s) {
    case step::setsid: return "setsid";
    case step::setrlimit: return "setrlimit";
    case step::setgroups: return "setgroups";
    case step::setgid: return "setgid";
    case step::setuid: return "setuid";
    case step::prctl: return "prctl";
    case step::parent_died: return "parent died";
    case step::chdir: return "chdir";
    case step::dup2: return "dup2";
    case step::close_range: return "close_range";
    case step::exec: return "exec";
    case step::mmap: return "mmap";
    case step::unshare: return "unshare";
    case step::cgroup: return "cgroup";
  }
  return "setup";
}

// 8 bytes: far below PIPE_BUF, so the child's single write is atomic.
struct error_record {
  std::int32_t failed_step;
  std::int32_t error;
};

// Everything the child reads; built in the parent so the child never allocates.
struct child_plan {
  bool new_session = true;
  bool reset_dispositions = true;
  int parent_death_signal = 0;
  pid_t parent_pid = 0;
  const std::vector<rlimit_setting>* limits = nullptr;
  const std::vector<shm::region_source>* maps = nullptr;
  bool set_groups = false;
  const std::vector<gid_t>* groups = nullptr;
  std::optional<gid_t> gid;
  std::optional<uid_t> uid;
  const char* cwd = nullptr;
  const std::vector<std::pair<int, int>>* fds = nullptr;
  int* moved = nullptr;  // scratch, one per fds entry, written by the child (fork: in its own copy)
  int dup_floor = 3;     // every moved source lands at or above this, i.e. above every target
  const std::vector<int>* keep = nullptr;  // sorted fds >= 3 that survive: targets + error pipe
  int error_fd = -1;                       // fork: the error pipe's write end
  volatile error_record* shared_error = nullptr;  // vfork: the parent's record (same memory)
  // vfork with CLONE_FILES: the child starts on the parent's fd table and first takes a private
  // copy of the fds below this one only (every fd it needs is below it). -1: own table already.
  int unshare_below = -1;
  int cgroup_procs_fd = -1;  // the instance's cgroup.procs: the child moves itself there first
  int cgroup_dir_fd = -1;    // ... or is created there (clone3 CLONE_INTO_CGROUP)
};

[[noreturn]] void child_fail(const child_plan& p, step s, int error) {
  const error_record record{static_cast<std::int32_t>(s), error};
  if (p.shared_error != nullptr) {
    p.shared_error->error = record.error;
    p.shared_error->failed_step = record.failed_step;
  } else {
    while (::write(p.error_fd, &record, sizeof record) < 0 && errno == EINTR) {
    }
  }
  ::_exit(127);
}

void close_fds_from(unsigned lo, unsigned hi) {
  // close_range exists since Linux 5.9; the loop is the fallback for older kernels.
  if (::close_range(lo, hi, 0) == 0 || errno != ENOSYS) return;
  rlimit rl{};
  rlim_t top = 65536;
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) top = std::min<rlim_t>(rl.rlim_cur, 1U << 20);
  for (rlim_t fd = lo; fd <= hi && fd < top; ++fd) ::close(static_cast<int>(fd));
}

// Runs in the child; returns only when every step succeeded. Async-signal-safe calls only.
void run_child_setup(const child_plan& p) {
  // The instance's cgroup before anything else (while the fd table may still be the parent's):
  // from here on, whatever this child starts is in it, whatever session or group it makes.
  if (p.cgroup_procs_fd >= 0 && sys::retry_eintr([&] { return ::write(p.cgroup_procs_fd, "0", 1); }) != 1)
    child_fail(p, step::cgroup, errno);

  // 0. A private fd table holding only the fds below unshare_below, before any fd is touched:
  // until then the table is the parent's. The kernel copies just that low part, so neither the
  // copy nor step 7 costs anything per fd the parent has open (it would be ~0.5 us per fd on
  // every restart: 1.5 ms with 1,000 instances).
  if (p.unshare_below >= 0 &&
      ::close_range(static_cast<unsigned>(p.unshare_below), ~0U, CLOSE_RANGE_UNSHARE) != 0)
    child_fail(p, step::unshare, errno);

  // 1. Dispositions first, then the mask: the parent blocked every signal around fork(), so no
  // parent handler can run here. EINVAL for SIGKILL/SIGSTOP and glibc's internal signals is fine.
  // Skipped when the parent has none to reset (child_setup::reset_signal_dispositions).
  if (p.reset_dispositions) {
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);
  }
  sigset_t empty;
  sigemptyset(&empty);
  ::sigprocmask(SIG_SETMASK, &empty, nullptr);

  // Shared memory the child maps itself (a pooled channel), while the fds are still open.
  for (const shm::region_source& m : *p.maps) {
    void* at = ::mmap(m.addr, m.size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED_NOREPLACE, m.fd, m.offset);
    if (at == MAP_FAILED) child_fail(p, step::mmap, errno);
    if (at != m.addr) child_fail(p, step::mmap, EEXIST);  // a kernel without NOREPLACE
    // Its own children (a behavior that forks) must not keep it: the slot is reused later.
    if (::madvise(at, m.size, MADV_DONTFORK) != 0) child_fail(p, step::mmap, errno);
  }

  // 2. Own session and process group, so stop/kill can target the whole group.
  if (p.new_session && ::setsid() < 0) child_fail(p, step::setsid, errno);

  // 3. Limits, while still privileged (raising a hard limit needs CAP_SYS_RESOURCE). A lower
  // soft fd limit waits until the fds are in place (step 8): the parent's fds (a supervisor with
  // many children has many) are still open and being moved, and a soft limit below their numbers
  // would fail those moves with EMFILE.
  const rlimit_setting* nofile = nullptr;
  for (const rlimit_setting& l : *p.limits) {
    rlimit rl{l.soft, l.hard};
    if (l.resource == RLIMIT_NOFILE) {
      nofile = &l;
      rlimit cur{};
      if (::getrlimit(RLIMIT_NOFILE, &cur) == 0 && cur.rlim_cur > rl.rlim_cur) rl.rlim_cur = std::min(cur.rlim_cur, rl.rlim_max);
    }
    if (::setrlimit(static_cast<__rlimit_resource_t>(l.resource), &rl) != 0) child_fail(p, step::setrlimit, errno);
  }

  // 4. Privilege drop with raw system calls: glibc's wrappers broadcast the change to the
  // parent's other threads (setxid), which do not exist in this child.
  if (p.set_groups &&
      ::syscall(SYS_setgroups, p.groups->size(), p.groups->empty() ? nullptr : p.groups->data()) != 0)
    child_fail(p, step::setgroups, errno);
  if (p.gid && ::syscall(SYS_setgid, *p.gid) != 0) child_fail(p, step::setgid, errno);
  if (p.uid && ::syscall(SYS_setuid, *p.uid) != 0) child_fail(p, step::setuid, errno);

  // 5. Parent-death signal after the uid change (which clears it). If the parent already died
  // before the prctl, the signal will never come: check getppid(). It reads 0 across a PID
  // namespace boundary, where the check cannot be made.
  if (p.parent_death_signal != 0) {
    if (::prctl(PR_SET_PDEATHSIG, static_cast<unsigned long>(p.parent_death_signal)) != 0)
      child_fail(p, step::prctl, errno);
    const pid_t ppid = ::getppid();
    if (ppid != 0 && ppid != p.parent_pid) child_fail(p, step::parent_died, ESRCH);
  }

  // After the privilege drop, so the directory is checked with the child's own rights.
  if (p.cwd != nullptr && ::chdir(p.cwd) != 0) child_fail(p, step::chdir, errno);

  // 6. Fd mapping in two phases, so overlapping and swapped mappings work: first every source
  // moves above every target (close-on-exec), then each lands on its target; dup2 leaves the
  // target inheritable, which also covers parent_fd == child_fd.
  const auto& fds = *p.fds;
  for (std::size_t i = 0; i < fds.size(); ++i) {
    p.moved[i] = ::fcntl(fds[i].first, F_DUPFD_CLOEXEC, p.dup_floor);
    if (p.moved[i] < 0) child_fail(p, step::dup2, errno);
  }
  for (std::size_t i = 0; i < fds.size(); ++i) {
    if (::dup2(p.moved[i], fds[i].second) < 0) child_fail(p, step::dup2, errno);
  }

  // 7. Close everything else >= 3 (including the moved copies), keeping the error pipe open
  // until exec closes it.
  unsigned lo = 3;
  for (int k : *p.keep) {
    const auto uk = static_cast<unsigned>(k);
    if (uk > lo) close_fds_from(lo, uk - 1);
    lo = uk + 1;
  }
  close_fds_from(lo, ~0U);

  // 8. The soft fd limit asked for (lowering it needs no privilege).
  if (nofile != nullptr) {
    const rlimit rl{nofile->soft, nofile->hard};
    if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) child_fail(p, step::setrlimit, errno);
  }
}

std::string describe(step s, int error, const std::string& what) {
  return std::string(step_name(s)) + (s == step::exec ? " " : " for ") + what + ": " + std::strerror(error);
}

launch_error make_error(int error, std::string stage, const std::string& message) {
  return launch_error{error, std::move(stage), message + ": " + std::strerror(error)};
}

// Fills the fd part of the plan and, when `pipe_fds` is given, the error pipe; returns 0 or an
// errno.
int prepare_plan(const child_setup& setup, child_plan& plan, std::vector<int>& keep, std::vector<int>& moved,
                 int (*pipe_fds)[2]) {
  int max_target = 2;
  for (auto [from, to] : setup.fds) {
    if (from < 0 || to < 0) return EBADF;
    max_target = std::max(max_target, to);
  }
  for (std::size_t i = 0; i < setup.fds.size(); ++i)
    for (std::size_t j = i + 1; j < setup.fds.size(); ++j)
      if (setup.fds[i].second == setup.fds[j].second) return EINVAL;  // two sources for one target

  if (pipe_fds != nullptr) {
    int(&pipe)[2] = *pipe_fds;
    if (::pipe2(pipe, O_CLOEXEC) != 0) return errno;
    // The write end must survive the dup2s: move it above every target if it is one of them.
    const bool clash = std::any_of(setup.fds.begin(), setup.fds.end(), [&](auto m) { return m.second == pipe[1]; });
    if (clash) {
      const int high = ::fcntl(pipe[1], F_DUPFD_CLOEXEC, max_target + 1);
      if (high < 0) {
        const int e = errno;
        ::close(pipe[0]);
        ::close(pipe[1]);
        return e;
      }
      ::close(pipe[1]);
      pipe[1] = high;
    }
    keep.push_back(pipe[1]);
    plan.error_fd = pipe[1];
  }

  for (auto m : setup.fds)
    if (m.second >= 3) keep.push_back(m.second);
  std::sort(keep.begin(), keep.end());
  keep.erase(std::unique(keep.begin(), keep.end()), keep.end());
  moved.assign(setup.fds.size(), -1);

  plan.new_session = setup.new_session;
  plan.reset_dispositions = setup.reset_signal_dispositions;
  plan.parent_death_signal = setup.parent_death_signal;
  plan.parent_pid = ::getpid();
  plan.limits = &setup.limits;
  plan.maps = &setup.maps;
  plan.set_groups = setup.uid.has_value() || setup.gid.has_value() || !setup.groups.empty();
  plan.groups = &setup.groups;
  plan.gid = setup.gid;
  plan.uid = setup.uid;
  plan.cwd = setup.cwd.empty() ? nullptr : setup.cwd.c_str();
  plan.fds = &setup.fds;
  plan.moved = moved.data();
  plan.dup_floor = max_target + 1;
  plan.keep = &keep;
  plan.cgroup_procs_fd = setup.cgroup_procs_fd;
  plan.cgroup_dir_fd = setup.cgroup_dir_fd;
  return 0;
}

// Every signal blocked in the calling thread while it lives: a new child starts with the mask,
// so no parent handler runs in it before it has reset them.
class all_signals_blocked {
 public:
  all_signals_blocked() {
    sigset_t all;
    sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &old_);
  }
  ~all_signals_blocked() { ::pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
  all_signals_blocked(const all_signals_blocked&) = delete;
  all_signals_blocked& operator=(const all_signals_blocked&) = delete;

 private:
  sigset_t old_;
};

// The launch_error of a child that reported a failed step.
launch_error step_error(const error_record& record, const std::string& what) {
  const auto s = static_cast<step>(record.failed_step);
  return launch_error{record.error, step_name(s), describe(s, record.error, what)};
}

// Reaps a child that reported a failed step and is in _exit(127): nobody else knows its pid.
void reap_failed(pid_t pid) {
  while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

// fork with every signal blocked; the child runs its setup, closes the pipe's write end (EOF:
// setup done) and _exit(body()). Returns the pid with the write end closed here, or the fork's
// error (the pipe then closed).
std::variant<pid_t, launch_error> fork_child(int (&pipe_fds)[2], const child_plan& plan, const std::function<int()>& body) {
  pid_t pid;
  int fork_errno;
  {
    all_signals_blocked blocked;
    pid = ::fork();
    if (pid == 0) {
      run_child_setup(plan);
      ::close(plan.error_fd);  // EOF tells the parent the setup succeeded
      ::_exit(body());
    }
    fork_errno = errno;
  }
  ::close(pipe_fds[1]);
  if (pid < 0) {
    ::close(pipe_fds[0]);
    return make_error(fork_errno, "fork", "fork for forked child");
  }
  return pid;
}

// Decodes what `n` bytes read from a setup pipe say.
setup_report decode_report(ssize_t n, const error_record& record, launch_error& error) {
  if (n == 0) return setup_report::succeeded;  // EOF
  if (n != static_cast<ssize_t>(sizeof record)) return n < 0 && errno == EAGAIN ? setup_report::pending : setup_report::succeeded;
  error = step_error(record, "forked child");
  return setup_report::failed;
}

// The exec path does not fork: clone(CLONE_VM | CLONE_VFORK) runs the child on a stack of its
// own in the parent's memory until execve, like posix_spawn (which cannot do our setup steps).
// Nothing is copied (fork copies the page tables: about 0.25 ms for a small parent, 28 ms for one
// with 200 MB of heap, on the restart path of every program). The calling thread is suspended
// until the child has exec'd or exited, so the child reports a failed step by writing the error
// record into the parent's memory, and everything it reads stays valid. Between clone and execve
// the child makes only system calls: it shares memory with the parent's other threads, which
// keep running (and its own errno is the calling thread's, which is suspended).
// Set once clone3 has refused CLONE_INTO_CGROUP here: launches then move the child instead.
std::atomic<bool> clone_into_cgroup_unsupported{false};

struct exec_child {
  child_plan* plan;
  const char* file;
  char* const* argv;
  char* const* envp;
  // child_setup::pid_env: where each "NAME=" slot's digits go (20 bytes reserved after it).
  char* const* pid_slots = nullptr;
  std::size_t pid_slot_count = 0;
};

// getpid() into `out` as decimal with a terminating NUL; async-signal-safe (no allocation).
void format_pid(char* out) {
  char digits[24];
  int n = 0;
  for (auto v = static_cast<unsigned long>(::getpid()); n == 0 || v != 0; v /= 10) digits[n++] = static_cast<char>('0' + v % 10);
  for (int i = 0; i < n; ++i) out[i] = digits[n - 1 - i];
  out[n] = '\0';
}

int exec_child_main(void* arg) {
  const auto* c = static_cast<const exec_child*>(arg);
  run_child_setup(*c->plan);
  for (std::size_t i = 0; i < c->pid_slot_count; ++i) format_pid(c->pid_slots[i]);
  ::execve(c->file, c->argv, c->envp);
  child_fail(*c->plan, step::exec, errno);
}

std::variant<pid_t, launch_error> vfork_exec(child_plan& plan, exec_child& child, const std::string& what,
                                             bool child_first) {
  // One child at a time per thread (the thread is suspended while it runs): one stack per thread.
  constexpr std::size_t stack_bytes = 256 * 1024;
  thread_local std::unique_ptr<std::byte[]> stack(new std::byte[stack_bytes]);
  volatile error_record record{-1, 0};
  plan.shared_error = &record;

  pid_t pid;
  int clone_errno;
  {
    all_signals_blocked blocked;
    void* top = stack.get() + stack_bytes;  // the stack grows down; new[] memory is 16-byte aligned
    const int files = plan.unshare_below >= 0 ? CLONE_FILES : 0;
    pid = -1;
    clone_errno = ENOSYS;
#if defined(__x86_64__)
    if (plan.cgroup_dir_fd >= 0 && !clone_into_cgroup_unsupported.load(std::memory_order_relaxed)) {
      clone_args args{};
      args.flags = CLONE_VM | CLONE_VFORK | static_cast<std::uint64_t>(files) | CLONE_INTO_CGROUP;
      args.exit_signal = SIGCHLD;
      args.stack = reinterpret_cast<std::uint64_t>(stack.get());
      args.stack_size = stack_bytes;
      args.cgroup = static_cast<std::uint64_t>(plan.cgroup_dir_fd);
      const int procs_fd = std::exchange(plan.cgroup_procs_fd, -1);  // already there: no move
      const long r = procsup_clone3(&args, sizeof args, exec_child_main, &child);
      if (r >= 0) {
        pid = static_cast<pid_t>(r);
      } else {
        clone_errno = static_cast<int>(-r);
        plan.cgroup_procs_fd = procs_fd;
        // An older kernel (no clone3 / CLONE_INTO_CGROUP) or a seccomp filter: move instead.
        if (clone_errno == ENOSYS || clone_errno == E2BIG || clone_errno == EINVAL || clone_errno == EPERM)
          clone_into_cgroup_unsupported.store(true, std::memory_order_relaxed);
      }
    }
#endif
    if (pid < 0 && (plan.cgroup_dir_fd < 0 || clone_into_cgroup_unsupported.load(std::memory_order_relaxed))) {
      pid = ::clone(exec_child_main, top, CLONE_VM | CLONE_VFORK | files | SIGCHLD, &child);
      clone_errno = errno;
    }
  }
  plan.shared_error = nullptr;

  if (pid < 0) return make_error(clone_errno, "fork", "fork for " + what);
  if (record.failed_step < 0) {  // exec'd
    if (child_first) ::sched_yield();
    return pid;
  }
  reap_failed(pid);
  const error_record failed{record.failed_step, record.error};
  return step_error(failed, what);
}

// The low fds the exec path passes a child's fds through. A child made with CLONE_FILES copies
// only the fds below the highest one it needs (run_child_setup step 0), so those must be low,
// but a supervisor's own fds (pidfds, pipes, channels: three or more per child) fill the low
// numbers. So each launching thread reserves a few of the lowest fds once, as placeholders (a
// close-on-exec /dev/null), and dup3()s a launch's fds onto them just for the clone: dup3
// replaces a placeholder atomically, and afterwards the placeholder is put back the same way.
// More fds than slots, or no slots (/dev/null missing, EMFILE): the rest are passed where they
// are and the child copies more (correct, only slower).
class fd_slots {
 public:
  static constexpr std::size_t count = 8;

  // The calling thread's slots, reserved at its first call (reserve_launch_fds() or a launch).
  // A forked copy of the thread (a forked child that launches in turn) has closed them with its
  // other inherited fds, and their numbers may be other fds now: it reserves its own.
  static fd_slots& mine() {
    thread_local fd_slots slots;
    if (slots.owner_ != ::getpid()) slots.reserve();  // the old numbers are not closed: not ours
    return slots;
  }

  fd_slots(const fd_slots&) = delete;
  fd_slots& operator=(const fd_slots&) = delete;
  ~fd_slots() {
    for (int fd : fds_)
      if (fd >= 0) ::close(fd);
    if (placeholder_ >= 0) ::close(placeholder_);
  }

  std::size_t size() const { return reserved_; }
  int operator[](std::size_t i) const { return fds_[i]; }
  // Puts the placeholder back into slot i (dropping the launch's fd that was staged there).
  void release(std::size_t i) const { ::dup3(placeholder_, fds_[i], O_CLOEXEC); }

 private:
  fd_slots() { reserve(); }

  // Forgets whatever slots it had and takes new ones (as many as it can).
  void reserve() {
    owner_ = ::getpid();
    fds_.fill(-1);
    reserved_ = 0;
    placeholder_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (placeholder_ < 0) return;
    for (int& fd : fds_) {
      fd = ::fcntl(placeholder_, F_DUPFD_CLOEXEC, 3);
      if (fd < 0) break;
      ++reserved_;
    }
  }

  pid_t owner_ = 0;
  int placeholder_ = -1;
  std::array<int, count> fds_{};
  std::size_t reserved_ = 0;
};

// The kernel's answer to CLONE_FILES + close_range(CLOSE_RANGE_UNSHARE) in a child (Linux 5.9):
// once a child reports the unshare step unsupported, launches copy the whole table again.
std::atomic<bool> unshare_unsupported{false};

std::string default_path() { return "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"; }

// 0 if `file` is an executable regular file, else an errno.
int check_executable(const std::string& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return errno;
  if (!S_ISREG(st.st_mode)) return EACCES;
  if (::access(file.c_str(), X_OK) != 0) return errno;
  return 0;
}

}  // namespace

std::string resolve_executable(const std::string& name, const std::string& path_env, int& error) {
  error = 0;
  if (name.empty()) {
    error = ENOENT;
    return {};
  }
  if (name.find('/') != std::string::npos) {
    std::string full = name;
    if (name.front() != '/') {
      // Absolute, because the child may chdir before exec.
      char cwd[PATH_MAX];
      if (::getcwd(cwd, sizeof cwd) == nullptr) {
        error = errno;
        return {};
      }
      full = std::string(cwd) + "/" + name;
    }
    error = check_executable(full);
    return error == 0 ? full : std::string{};
  }

  const std::string path = path_env.empty() ? default_path() : path_env;
  int first_error = ENOENT;  // report EACCES if a match existed but was not executable
  std::size_t begin = 0;
  while (begin <= path.size()) {
    std::size_t end = path.find(':', begin);
    if (end == std::string::npos) end = path.size();
    std::string dir = path.substr(begin, end - begin);
    begin = end + 1;
    if (dir.empty()) {
      char cwd[PATH_MAX];
      if (::getcwd(cwd, sizeof cwd) == nullptr) continue;
      dir = cwd;
    }
    const std::string candidate = dir + "/" + name;
    const int e = check_executable(candidate);
    if (e == 0) return candidate;
    if (e != ENOENT && e != ENOTDIR) first_error = e;
  }
  error = first_error;
  return {};
}

std::vector<std::string> current_environment() {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) env.emplace_back(*e);
  return env;
}

std::variant<pid_t, launch_error> launch_exec(const exec_spec& spec) {
  return launch_exec(spec, spec.setup, spec.child_first);
}

std::variant<pid_t, launch_error> launch_exec(const exec_spec& spec, const child_setup& setup, bool child_first) {
  std::string path = spec.path;
  if (path.find('/') == std::string::npos) {
    std::string path_env;
    for (const std::string& e : spec.env)
      if (e.rfind("PATH=", 0) == 0) path_env = e.substr(5);
    if (path_env.empty()) {
      const char* p = std::getenv("PATH");
      path_env = p != nullptr ? p : "";
    }
    int error = 0;
    path = resolve_executable(spec.path, path_env, error);
    if (path.empty()) return make_error(error, "resolve", "resolve " + spec.path);
  }

  // argv/envp arrays point into the caller's strings, which outlive the fork.
  std::vector<char*> argv;
  if (spec.argv.empty()) {
    argv.push_back(path.data());
  } else {
    for (const std::string& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  }
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const std::string& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
  // The child's own pid: a "NAME=" slot of this launch, filled in by the child before execve.
  std::vector<std::string> pid_vars;
  std::vector<char*> pid_slots;
  for (const std::string& name : setup.pid_env) {
    const std::string prefix = name + "=";
    if (std::any_of(spec.env.begin(), spec.env.end(), [&](const std::string& e) { return e.rfind(prefix, 0) == 0; }))
      continue;
    pid_vars.push_back(prefix + std::string(21, '\0'));
  }
  for (std::string& v : pid_vars) {
    envp.push_back(v.data());
    pid_slots.push_back(v.data() + (v.size() - 21));
  }
  envp.push_back(nullptr);

  child_plan plan;
  std::vector<int> keep;
  std::vector<int> moved;
  if (const int e = prepare_plan(setup, plan, keep, moved, nullptr); e != 0)
    return make_error(e, "pipe", "prepare launch of " + path);
  exec_child child{&plan, path.c_str(), argv.data(), envp.data(), pid_slots.data(), pid_slots.size()};
  if (unshare_unsupported.load(std::memory_order_relaxed)) return vfork_exec(plan, child, path, child_first);

  // Stage the fds onto the low slots; the child copies only the fds below the highest it needs.
  const fd_slots& slots = fd_slots::mine();
  std::vector<std::pair<int, int>> staged = setup.fds;
  std::size_t used = 0;
  int highest = 2;
  for (auto& [from, to] : staged) {
    if (used < slots.size() && from > slots[used] && ::dup3(from, slots[used], O_CLOEXEC) >= 0) from = slots[used++];
    highest = std::max(highest, from);
  }
  plan.fds = &staged;
  plan.unshare_below = highest + 1;
  auto r = vfork_exec(plan, child, path, child_first);
  for (std::size_t i = 0; i < used; ++i) slots.release(i);

  auto* err = std::get_if<launch_error>(&r);
  if (err == nullptr || err->stage != step_name(step::unshare) || (err->error != ENOSYS && err->error != EINVAL))
    return r;
  unshare_unsupported.store(true, std::memory_order_relaxed);  // an old kernel: the slow way
  plan.fds = &setup.fds;
  plan.unshare_below = -1;
  return vfork_exec(plan, child, path, child_first);
}

void reserve_launch_fds() { fd_slots::mine(); }

namespace {
// The plan, the setup pipe and the fork: the child is running its setup when this returns.
std::variant<forked_child, launch_error> start_fork(const child_setup& setup, const std::function<int()>& body) {
  child_plan plan;
  std::vector<int> keep;
  std::vector<int> moved;
  int pipe_fds[2] = {-1, -1};
  if (const int e = prepare_plan(setup, plan, keep, moved, &pipe_fds); e != 0)
    return make_error(e, "pipe", "prepare fork");
  auto r = fork_child(pipe_fds, plan, body);
  if (auto* err = std::get_if<launch_error>(&r)) return std::move(*err);
  return forked_child{std::get<pid_t>(r), pipe_fds[0]};
}
}  // namespace

std::variant<pid_t, launch_error> launch_fork(const child_setup& setup, const std::function<int()>& body) {
  auto r = start_fork(setup, body);
  if (auto* err = std::get_if<launch_error>(&r)) return std::move(*err);
  const auto [pid, raw_report_fd] = std::get<forked_child>(r);
  const sys::unique_fd report_fd(raw_report_fd);
  launch_error error;
  const auto st = read_setup_report(report_fd.get(), error);  // blocks until EOF or a failure record
  if (st != setup_report::failed) return pid;
  reap_failed(pid);
  return error;
}

std::variant<forked_child, launch_error> launch_fork_async(const child_setup& setup, const std::function<int()>& body) {
  auto r = start_fork(setup, body);
  if (auto* f = std::get_if<forked_child>(&r)) ::fcntl(f->report_fd, F_SETFL, O_NONBLOCK);
  return r;
}

setup_report read_setup_report(int report_fd, launch_error& error) {
  error_record record{};
  ssize_t n = 0;
  do {
    n = ::read(report_fd, &record, sizeof record);
  } while (n < 0 && errno == EINTR);
  return decode_report(n, record, error);
}

}  // namespace procsup
