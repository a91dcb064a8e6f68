#!/usr/bin/env python3
"""check_layers.py SRC [--suffix SUFFIX]... [FILE]...

Holds chip's layering, read from the sources under SRC (the repository's src/):

  syscall  System calls (and the thin libc wrappers of one: open, read, fork,
           kill, getpid, getpwnam, mmap, nanosleep, ...) are made only in
           src/os/. So are the std wrappers of a system call:
           std::this_thread::sleep_for/sleep_until and the std::filesystem
           operations that reach the file system (absolute, exists, ...).
           src/uv/ calls libuv only.
  clock    The clock is read (std::chrono::*_clock::now(), clock_gettime, time,
           gettimeofday, uv_now, uv_hrtime, ...) only in src/os/ and src/uv/.
  libuv    <uv.h> is included only in src/uv/, and "uv/uv.hpp" (and the other
           headers of src/uv/, such as "uv/http.hpp") only in src/uv/ and
           src/daemon/; libuv (uv_*) is called only in src/uv/.
  libcurl  <curl/curl.h> (or any <curl/...>) is included only in src/uv/, and
           libcurl (curl_*) is called only there: the HTTP client is driven by
           the loop, so it lives beside it (src/uv/http.cpp).
  cluster  src/cluster/ (etcd's protocol, one chipd's session) is pure like
           the core: it includes only the standard library, nlohmann/json,
           cluster/ and common/ headers.
  handoff  src/handoff/ (the hand-off of a reexec and its bytes) is pure like
           the core: it includes only the standard library (and <sys/types.h>),
           common/, core/, spec/spec.hpp (plain types) and handoff/ headers.
  core     src/core/ includes only the standard library (and <sys/types.h>, for
           pid_t: types only), core/ and common/ headers.
  common   src/common/, the bottom layer, includes no other folder of src/.

Comments and the contents of string and character literals are ignored. A call
is NAME( written bare or as ::NAME( (std::NAME( for the std wrappers). These are
not: X::NAME( with X not std (Connection::open, os::kill_group; but a std
clock's now() through an alias is), a member call (.NAME( or ->NAME(), a
declaration (a type before NAME: `bool write_all(`), and a bare NAME( that C++
resolves to a function of ours: a method of the class it is written in
(shutdown() in a method of Tree, which has one), or a function declared at
namespace level in the same file.

Each violation is printed as FILE:LINE: RULE: WHAT, FILE relative to the folder
holding SRC. Exit status: 1 when there is any, 0 otherwise, 2 on bad usage.

Files are those under SRC ending in .c, .cpp, .h or .hpp, or the FILEs given (which
must lie under SRC). A --suffix (e.g. .txt) is taken off a file name before it
is considered: the self-test's fixtures are loader.cpp.txt and so on, so that
neither the build nor the formatter takes them for sources.
"""

import argparse
import os
import re
import sys

SOURCE_EXTENSIONS = ('.c', '.cpp', '.h', '.hpp')

# The thin libc wrappers of a system call, by what they reach.
SYSCALLS = set('''
    open open64 openat openat2 creat close close_range read write pread pwrite
    pread64 pwrite64 readv writev preadv pwritev preadv2 pwritev2 lseek lseek64
    fsync fdatasync sync syncfs truncate ftruncate fallocate posix_fallocate
    posix_fadvise sendfile splice tee vmsplice copy_file_range
    stat fstat lstat fstatat newfstatat statx stat64 fstat64 lstat64 statfs
    fstatfs statvfs fstatvfs access faccessat faccessat2 euidaccess eaccess
    unlink unlinkat rename renameat renameat2 link linkat symlink symlinkat
    readlink readlinkat mkdir mkdirat rmdir chdir fchdir getcwd get_current_dir_name
    chroot pivot_root chmod fchmod fchmodat chown fchown lchown fchownat umask
    utime utimes futimes lutimes utimensat futimens mknod mknodat mkfifo mkfifoat
    opendir fdopendir readdir readdir64 readdir_r closedir scandir getdents
    getdents64 realpath mkstemp mkostemp mkstemps mkdtemp tmpfile
    dup dup2 dup3 fcntl ioctl flock lockf isatty ttyname ttyname_r
    pipe pipe2 poll ppoll select pselect epoll_create epoll_create1 epoll_ctl
    epoll_wait epoll_pwait eventfd eventfd_read eventfd_write signalfd
    timerfd_create timerfd_settime timerfd_gettime inotify_init inotify_init1
    inotify_add_watch inotify_rm_watch fanotify_init fanotify_mark memfd_create
    mount umount umount2 setxattr getxattr listxattr removexattr
    mmap mmap64 munmap mprotect msync madvise posix_madvise mlock mlock2 munlock
    mlockall munlockall mremap mincore shm_open shm_unlink shmget shmat shmdt
    shmctl brk sbrk
    socket socketpair connect bind listen accept accept4 send sendto sendmsg
    sendmmsg recv recvfrom recvmsg recvmmsg shutdown getsockopt setsockopt
    getsockname getpeername
    fork vfork clone clone3 execve execv execvp execvpe execl execlp execle
    execveat fexecve posix_spawn posix_spawnp system popen pclose daemon _exit
    _Exit kill killpg tgkill tkill raise sigqueue pidfd_open pidfd_send_signal
    pidfd_getfd waitpid wait wait3 wait4 waitid
    getpid getppid gettid getuid geteuid getgid getegid getresuid getresgid
    getgroups setgroups setuid seteuid setreuid setresuid setgid setegid setregid
    setresgid setfsuid setfsgid initgroups getlogin getlogin_r cuserid
    getpwnam getpwnam_r getpwuid getpwuid_r getpwent setpwent endpwent getgrnam
    getgrnam_r getgrgid getgrgid_r getgrent setgrent endgrent getgrouplist
    setsid getsid setpgid getpgid getpgrp setpgrp tcsetpgrp tcgetpgrp tcgetattr
    tcsetattr prctl arch_prctl ptrace personality capget capset unshare setns
    syscall nice setpriority getpriority sched_yield sched_setaffinity
    sched_getaffinity sched_setscheduler sched_getscheduler sched_setparam
    sched_getparam getrlimit setrlimit prlimit getrusage
    signal sigaction sigprocmask pthread_sigmask sigsuspend sigwait sigwaitinfo
    sigtimedwait sigaltstack pause alarm setitimer getitimer timer_create
    timer_settime timer_gettime timer_delete
    nanosleep clock_nanosleep usleep sleep
    uname gethostname sethostname getdomainname sysinfo sysconf get_nprocs
    getrandom getentropy reboot acct swapon swapoff
'''.split())

# The clock reads (also system calls, but their own rule: src/uv/ may read it).
CLOCK_CALLS = set('''
    clock_gettime clock_getres gettimeofday time ftime timespec_get clock times
    uv_now uv_hrtime uv_update_time uv_clock_gettime uv_gettimeofday
'''.split())

STD_CLOCKS = {'steady_clock', 'system_clock', 'high_resolution_clock', 'utc_clock',
              'tai_clock', 'gps_clock', 'file_clock'}

# std::this_thread's system calls.
STD_THIS_THREAD = {'sleep_for', 'sleep_until'}

# The std::filesystem operations that reach the file system (path arithmetic
# such as path(), lexically_normal() or is_absolute() does not).
STD_FILESYSTEM = set('''
    absolute canonical weakly_canonical relative proximate copy copy_file
    copy_symlink create_directory create_directories create_hard_link
    create_symlink create_directory_symlink current_path equivalent exists
    file_size hard_link_count last_write_time permissions read_symlink remove
    remove_all rename resize_file space status status_known symlink_status
    temp_directory_path is_block_file is_character_file is_directory is_empty
    is_fifo is_other is_regular_file is_socket is_symlink directory_iterator
    recursive_directory_iterator
'''.split()) - {'status_known'}

# Words before NAME( that make it a call, not a declaration.
CALL_KEYWORDS = {'return', 'else', 'do', 'case', 'throw', 'co_return', 'co_yield',
                 'co_await', 'and', 'or', 'not', 'xor', 'bitand', 'bitor', 'compl',
                 'not_eq', 'and_eq', 'or_eq', 'xor_eq', 'sizeof', 'decltype', 'noexcept'}

# C++ keywords: before ::NAME, not a qualifier (return ::open(...)).
KEYWORDS = CALL_KEYWORDS | set('''
    alignas alignof asm auto bool break catch char char8_t char16_t char32_t class
    concept const consteval constexpr constinit const_cast continue default
    delete double dynamic_cast enum explicit export extern false float for friend
    goto if inline int long mutable namespace new nullptr operator private
    protected public register reinterpret_cast requires short signed static
    static_assert static_cast struct switch template this thread_local true try
    typedef typeid typename union unsigned using virtual void volatile wchar_t
    while
'''.split())

# Headers of the C++ standard library (and the C ones it includes as <cxxx>).
STD_HEADERS = set('''
    algorithm any array atomic barrier bit bitset charconv chrono codecvt compare
    complex concepts condition_variable coroutine deque exception execution
    expected filesystem flat_map flat_set format forward_list fstream functional
    future generator initializer_list iomanip ios iosfwd iostream istream iterator
    latch limits list locale map mdspan memory memory_resource mutex new numbers
    numeric optional ostream print queue random ranges ratio regex
    scoped_allocator semaphore set shared_mutex source_location span spanstream
    sstream stack stacktrace stdexcept stdfloat stop_token streambuf string
    string_view syncstream system_error text_encoding thread tuple type_traits
    typeindex typeinfo unordered_map unordered_set utility valarray variant vector
    version
    cassert cctype cerrno cfenv cfloat cinttypes climits clocale cmath csetjmp
    csignal cstdarg cstddef cstdint cstdio cstdlib cstring ctime cuchar cwchar
    cwctype
'''.split())
# POSIX headers the core may use for their types alone (pid_t).
CORE_TYPE_HEADERS = {'sys/types.h'}

SRC_FOLDERS = ('os', 'uv', 'core', 'spec', 'registry', 'daemon', 'client', 'ctl', 'common',
               'cluster', 'handoff')

CALL = re.compile(r'\b([A-Za-z_]\w*)\s*\(')
INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*([<"])([^>"\n]*)[>"]', re.M)
NAMESPACE_ALIAS = re.compile(r'\bnamespace\s+(\w+)\s*=\s*((?:::)?\w+(?:\s*::\s*\w+)*)\s*;')
TYPE_ALIAS = re.compile(r'\busing\s+(\w+)\s*=\s*(?:typename\s+)?((?:::)?\w+(?:\s*::\s*\w+)*)\s*;')
TYPEDEF = re.compile(r'\btypedef\s+((?:::)?\w+(?:\s*::\s*\w+)*)\s+(\w+)\s*;')
USING_NAMESPACE = re.compile(r'\busing\s+namespace\s+((?:::)?\w+(?:\s*::\s*\w+)*)\s*;')
RAW_PREFIXES = ('R', 'u8R', 'uR', 'UR', 'LR')


def strip(text):
    """TEXT without comments (literals kept), and TEXT without comments or the
    contents of its string and character literals (the quotes kept). Both keep
    every newline, so that line numbers hold."""
    no_comments, code = [], []
    i, n = 0, len(text)

    def blank(s):
        return ''.join('\n' if c == '\n' else ' ' for c in s)

    def emit(s, literal=False):
        no_comments.append(s)
        code.append(blank(s) if literal else s)

    while i < n:
        c = text[i]
        if text.startswith('//', i):
            j = i
            while j < n and text[j] != '\n':
                # A backslash-newline continues a // comment.
                j += 2 if text.startswith('\\\n', j) else 1
            s = blank(text[i:j])
            no_comments.append(s)
            code.append(s)
            i = j
        elif text.startswith('/*', i):
            j = text.find('*/', i + 2)
            j = n if j < 0 else j + 2
            s = blank(text[i:j])
            no_comments.append(s)
            code.append(s)
            i = j
        elif c == '"':
            k = i
            while k > 0 and (text[k - 1].isalnum() or text[k - 1] == '_'):
                k -= 1
            prefix = text[k:i]
            if prefix in RAW_PREFIXES:
                open_paren = text.find('(', i + 1)
                delim = text[i + 1:open_paren] if open_paren >= 0 else ''
                end = text.find(')' + delim + '"', open_paren + 1) if open_paren >= 0 else -1
                j = n if end < 0 else end + len(delim) + 2
            else:
                j = i + 1
                while j < n and text[j] != '"' and text[j] != '\n':
                    j += 2 if text[j] == '\\' else 1
                j = min(j + 1, n)
            emit('"')
            emit(text[i + 1:j - 1], literal=True)
            emit(text[j - 1:j] if j - 1 > i else '')
            i = j
        elif c == "'":
            # A digit separator (1'000'000) when the token before it is a number.
            k = i
            while k > 0 and (text[k - 1].isalnum() or text[k - 1] in '_.'):
                k -= 1
            if k < i and text[k].isdigit():
                emit(c)
                i += 1
                continue
            j = i + 1
            while j < n and text[j] != "'" and text[j] != '\n':
                j += 2 if text[j] == '\\' else 1
            j = min(j + 1, n)
            emit("'")
            emit(text[i + 1:j - 1], literal=True)
            emit(text[j - 1:j] if j - 1 > i else '')
            i = j
        else:
            j = i + 1
            while j < n and text[j] not in '/"\'':
                j += 1
            emit(text[i:j])
            i = j
    return ''.join(no_comments), ''.join(code)


def skip_space_back(code, j):
    while j >= 0 and code[j] in ' \t\r\n':
        j -= 1
    return j


def qualifier_before(code, start):
    """The qualifier of the name at START: None when it has none, [''] for ::NAME,
    else its parts (['std', 'chrono', 'steady_clock'] for std::chrono::steady_clock::)."""
    parts = []
    j = skip_space_back(code, start - 1)
    while j >= 1 and code[j] == ':' and code[j - 1] == ':':
        j = skip_space_back(code, j - 2)
        if j >= 0 and code[j] == '>':  # X<...>:: : skip the template arguments
            depth = 0
            while j >= 0:
                if code[j] == '>':
                    depth += 1
                elif code[j] == '<':
                    depth -= 1
                    if depth == 0:
                        break
                j -= 1
            j = skip_space_back(code, j - 1)
        k = j
        while k >= 0 and (code[k].isalnum() or code[k] == '_'):
            k -= 1
        word = code[k + 1:j + 1]
        if not word or word[0].isdigit() or word in KEYWORDS:
            parts.insert(0, '')
            return parts
        parts.insert(0, word)
        j = skip_space_back(code, k)
    return parts or None


def is_call(code, start):
    """Whether the bare NAME( at START is a call rather than a member call or a
    declaration of a function of ours."""
    j = skip_space_back(code, start - 1)
    if j < 0:
        return True
    c = code[j]
    if c == '.' or (c == '>' and j > 0 and code[j - 1] == '-'):
        return False  # a member call
    if c == '~':
        return False  # a destructor
    if c.isalnum() or c == '_':
        k = j
        while k >= 0 and (code[k].isalnum() or code[k] == '_'):
            k -= 1
        word = code[k + 1:j + 1]
        return word in CALL_KEYWORDS  # else a type: a declaration
    if c == '>':
        return False  # a template type: Result<off_t> name(
    if c == '*' or (c == '&' and not (j > 0 and code[j - 1] == '&')):
        return False  # a pointer or reference type: const char *name(
    return True


class File:
    def __init__(self, label, folder, text):
        self.label = label
        self.folder = folder  # the folder of src/ the file is in: os, core, ...
        self.no_comments, self.code = strip(text)
        self.line_starts = [0] + [m.end() for m in re.finditer('\n', self.code)]
        self.aliases = {}
        for m in NAMESPACE_ALIAS.finditer(self.code):
            self.aliases[m.group(1)] = split_qualified(m.group(2))
        for m in TYPE_ALIAS.finditer(self.code):
            self.aliases[m.group(1)] = split_qualified(m.group(2))
        for m in TYPEDEF.finditer(self.code):
            self.aliases[m.group(2)] = split_qualified(m.group(1))
        self.using_namespaces = [self.resolve(split_qualified(m.group(1)))
                                 for m in USING_NAMESPACE.finditer(self.code)]
        self.scopes, self.methods, blocks = scopes_of(self.code)
        # The functions this file declares or defines at namespace level (not
        # in a class or a function): a bare call to one of those names is to
        # ours (it hides the libc function of that name).
        self.own = {m.group(1) for m in CALL.finditer(self.code)
                    if qualifier_before(self.code, m.start(1)) is None and
                    not is_call(self.code, m.start(1)) and
                    not any(start < m.start(1) < end for start, end in blocks)}

    def line_of(self, pos):
        lo, hi = 0, len(self.line_starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.line_starts[mid] <= pos:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1

    def classes_at(self, pos):
        """The classes whose body or member function body holds POS."""
        return [cls for start, end, cls, _ in self.scopes if start < pos < end]

    def resolve(self, parts):
        """PARTS with a leading alias (fs, Clock) replaced by what it names."""
        seen = set()
        while parts and parts[0] in self.aliases and parts[0] not in seen:
            seen.add(parts[0])
            parts = self.aliases[parts[0]] + parts[1:]
        if parts and parts[0] == '':
            parts = parts[1:] if len(parts) > 1 and parts[1] == 'std' else parts
        return parts


CLASS_HEAD = re.compile(r'\b(?:class|struct|union)\s+(?:alignas\s*\([^)]*\)\s*)?(\w+)'
                        r'\s*(?:final\s*)?(?::[^;{}()]*)?$')
NAMESPACE_HEAD = re.compile(r'(?:\bnamespace\b[\w\s:]*|\bextern\s*"\s*")\s*$')
MEMBER_DEFINITION = re.compile(r'(\w+)\s*(?:<[^<>;{}]*>)?\s*::\s*~?\w+\s*\(')


def scopes_of(code):
    """The spans of class bodies and of member function definitions, as
    (start, end, class, 'class' or 'member'); the functions each class declares
    (its methods); the spans of the outermost braces that are not namespaces'."""
    scopes, methods, blocks = [], {}, []
    stack = []  # (kind, class or None, position of '{')
    boundary = 0  # where the text before the next '{' (its head) starts
    for i, c in enumerate(code):
        if c == '{':
            head = code[boundary:i]
            at_namespace_level = all(kind == 'namespace' for kind, _, _ in stack)
            kind, cls = 'block', None
            if NAMESPACE_HEAD.search(head):
                kind = 'namespace'
            elif CLASS_HEAD.search(head):
                kind, cls = 'class', CLASS_HEAD.search(head).group(1)
            elif at_namespace_level:
                m = MEMBER_DEFINITION.search(head)
                if m:
                    kind, cls = 'member', m.group(1)
            stack.append((kind, cls, i))
            boundary = i + 1
        elif c == '}':
            if stack:
                kind, cls, start = stack.pop()
                if kind != 'namespace' and all(k == 'namespace' for k, _, _ in stack):
                    blocks.append((start, i))
                if cls:
                    scopes.append((start, i, cls, kind))
                if kind == 'class':
                    body = code[start + 1:i]
                    methods.setdefault(cls, set()).update(declared_at_top(body))
            boundary = i + 1
        elif c == ';':
            boundary = i + 1
    return scopes, methods, blocks


def declared_at_top(body):
    """The names NAME( at the top level of a class BODY: its methods."""
    names, depth = set(), 0
    top = []
    for c in body:
        if c == '{':
            depth += 1
        elif c == '}':
            depth -= 1
        top.append(c if depth == 0 else ' ')
    top = ''.join(top)
    for m in CALL.finditer(top):
        names.add(m.group(1))
    return names


def split_qualified(s):
    parts = [p.strip() for p in s.split('::')]
    return parts


def call_rule(f, qualifier, name):
    """(rule, what) for a call to NAME with QUALIFIER, or None when it is fine."""
    shown = ('::'.join(qualifier) + '::' if qualifier else '') + name + '()'
    if qualifier is None:
        # A bare name: also std:: through a using-directive.
        for ns in f.using_namespaces:
            hit = std_rule(ns, name, shown)
            if hit:
                return hit
        return libc_rule(name, shown)
    if qualifier == ['']:
        return libc_rule(name, shown)
    resolved = f.resolve(qualifier)
    if name == 'now' and resolved and resolved[-1] in STD_CLOCKS:
        return ('clock', shown + ' reads the clock: only src/os and src/uv do')
    if resolved and resolved[0] == 'std':
        return std_rule(resolved, name, shown)
    return None  # X::name(: a function of ours


def std_rule(ns, name, shown):
    if ns == ['std']:
        return libc_rule(name, shown)
    if ns[:2] == ['std', 'this_thread'] and name in STD_THIS_THREAD:
        return ('syscall', shown + ' is a system call: only src/os makes them')
    if ns[:2] == ['std', 'filesystem'] and name in STD_FILESYSTEM:
        return ('syscall', shown + ' reaches the file system: only src/os does')
    if name == 'now' and ns and ns[-1] in STD_CLOCKS:
        return ('clock', shown + ' reads the clock: only src/os and src/uv do')
    return None


def libc_rule(name, shown):
    if name in CLOCK_CALLS:
        return ('clock', shown + ' reads the clock: only src/os and src/uv do')
    if name in SYSCALLS:
        return ('syscall', shown + ' is a system call: only src/os makes them')
    if name.startswith('uv_'):
        return ('libuv', shown + ' calls libuv: only src/uv does')
    if name.startswith('curl_'):
        return ('libcurl', shown + ' calls libcurl: only src/uv does')
    return None


def allowed(rule, folder):
    if rule == 'syscall':
        return folder == 'os'
    if rule == 'clock':
        return folder in ('os', 'uv')
    if rule in ('libuv', 'libcurl'):
        return folder == 'uv'
    return False


def check_calls(f, methods):
    for m in CALL.finditer(f.code):
        name = m.group(1)
        qualifier = qualifier_before(f.code, m.start(1))
        if qualifier is None:
            if not is_call(f.code, m.start(1)) or name in f.own:
                continue
            # In a class or a member function, NAME( calls the class's own NAME.
            if any(name in methods.get(cls, ()) for cls in f.classes_at(m.start(1))):
                continue
        hit = call_rule(f, qualifier, name)
        if hit and not allowed(hit[0], f.folder):
            yield f.line_of(m.start(1)), hit[0], hit[1]


def check_includes(f):
    for m in INCLUDE.finditer(f.no_comments):
        angle, header = m.group(1) == '<', m.group(2).strip()
        shown = '#include ' + ('<%s>' % header if angle else '"%s"' % header)
        line = f.line_of(m.start(2))
        if angle and header == 'uv.h' and f.folder != 'uv':
            yield line, 'libuv', shown + ': only src/uv includes libuv'
        if not angle and header.startswith('uv/') and f.folder not in ('uv', 'daemon'):
            yield line, 'libuv', shown + ': only src/uv and src/daemon include it'
        if angle and header.startswith('curl/') and f.folder != 'uv':
            yield line, 'libcurl', shown + ': only src/uv includes libcurl'
        if f.folder == 'cluster':
            ok = (header in STD_HEADERS or header in CORE_TYPE_HEADERS or
                  header.startswith('nlohmann/')) if angle else \
                header.startswith(('cluster/', 'common/'))
            if not ok:
                yield line, 'cluster', (shown + ': src/cluster includes only the standard '
                                        'library, nlohmann/json, cluster/ and common/')
        if f.folder == 'handoff':
            ok = (header in STD_HEADERS or header in CORE_TYPE_HEADERS) if angle else \
                (header.startswith(('handoff/', 'core/', 'common/')) or header == 'spec/spec.hpp')
            if not ok:
                yield line, 'handoff', (shown + ': src/handoff includes only the standard '
                                        'library, common/, core/, spec/spec.hpp and handoff/')
        if f.folder == 'core':
            ok = (header in STD_HEADERS or header in CORE_TYPE_HEADERS) if angle else \
                header.startswith(('core/', 'common/'))
            if not ok:
                yield line, 'core', (shown + ': the core includes only the standard library, '
                                     'core/ and common/')
        if f.folder == 'common' and not angle and header.split('/')[0] in SRC_FOLDERS \
                and not header.startswith('common/'):
            yield line, 'common', shown + ': src/common is the bottom layer'


def check_file(f, methods):
    problems = list(check_includes(f)) + list(check_calls(f, methods))
    return sorted(set(problems))


def logical_name(path, suffixes):
    for s in suffixes:
        if s and path.endswith(s):
            return path[:-len(s)]
    return path


def main(argv):
    parser = argparse.ArgumentParser(
        description="Checks chip's layering (system calls, clock reads, libuv, the core).")
    parser.add_argument('src', help="the sources' root folder (the repository's src/)")
    parser.add_argument('files', nargs='*',
                        help='only these files (under SRC); default: every source under SRC')
    parser.add_argument('--suffix', action='append', default=[],
                        help='taken off file names before they are considered (e.g. .txt)')
    args = parser.parse_intermixed_args(argv)

    src = os.path.abspath(args.src)
    if not os.path.isdir(src):
        print('check_layers: %s is not a folder' % args.src, file=sys.stderr)
        return 2
    base = os.path.dirname(src)
    if args.files:
        paths = [os.path.abspath(p) for p in args.files]
    else:
        paths = []
        for dirpath, dirnames, filenames in os.walk(src):
            dirnames.sort()
            paths += [os.path.join(dirpath, fn) for fn in sorted(filenames)]
    files = []
    for path in paths:
        logical = logical_name(path, args.suffix)
        if not logical.endswith(SOURCE_EXTENSIONS):
            if args.files:
                print('check_layers: not a C or C++ source: %s' % path, file=sys.stderr)
                return 2
            continue
        rel = os.path.relpath(logical, src)
        if rel.startswith('..'):
            print('check_layers: %s is not under %s' % (path, args.src), file=sys.stderr)
            return 2
        folder = rel.split(os.sep)[0] if os.sep in rel else ''
        with open(path, encoding='utf-8', errors='replace') as fh:
            files.append(File(os.path.relpath(path, base), folder, fh.read()))
    # The methods of every class, wherever it is declared (a .cpp defines the
    # methods its header declares).
    methods = {}
    for f in files:
        for cls, names in f.methods.items():
            methods.setdefault(cls, set()).update(names)
    problems = 0
    for f in files:
        for line, rule, what in check_file(f, methods):
            print('%s:%d: %s: %s' % (f.label, line, rule, what))
            problems += 1
    if problems:
        print('check_layers: %d violation%s of the layering' % (problems, 's' if problems > 1
                                                                  else ''), file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
