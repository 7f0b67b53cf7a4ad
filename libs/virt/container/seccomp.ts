/**
 * The container's default seccomp filter: what Docker's default profile (moby/profiles/seccomp/default.json)
 * refuses a container that has Docker's default capabilities, written as a deny list so that a syscall the
 * profile does not know yet (a new kernel's) keeps working. Each refused syscall fails with EPERM, as in
 * Docker; clone3 fails with ENOSYS so that the C library falls back to clone, whose namespace flags are
 * checked (clone3 passes its flags in memory, where seccomp cannot look).
 */

const EPERM = 1;
const ENOSYS = 38;

/** Refused outright: kernel modules, kexec, keyrings, BPF, perf, mounts, swap, the clock, accounting, ... */
export const DENIED_SYSCALLS = [
  // Loading and unloading kernel code.
  'create_module',
  'init_module',
  'finit_module',
  'delete_module',
  'get_kernel_syms',
  'query_module',
  'kexec_load',
  'kexec_file_load',
  // The kernel keyring is not namespaced.
  'add_key',
  'keyctl',
  'request_key',
  // Tracing, profiling and other processes' memory (CAP_SYS_ADMIN / CAP_SYS_PTRACE in Docker).
  'bpf',
  'perf_event_open',
  'lookup_dcookie',
  'kcmp',
  'process_vm_readv',
  'process_vm_writev',
  'userfaultfd',
  // Files by handle bypass the mount namespace (the "shocker" escape).
  'open_by_handle_at',
  'name_to_handle_at',
  // Mounts and namespaces (CAP_SYS_ADMIN in Docker).
  'mount',
  'umount',
  'umount2',
  'pivot_root',
  'fsopen',
  'fsconfig',
  'fsmount',
  'fspick',
  'move_mount',
  'open_tree',
  'mount_setattr',
  'unshare',
  'setns',
  'quotactl',
  'quotactl_fd',
  // The host as a whole: power, swap, clock, accounting, kernel log, NUMA policy.
  'reboot',
  'swapon',
  'swapoff',
  'settimeofday',
  'stime',
  'clock_settime',
  'clock_settime64',
  'clock_adjtime',
  'clock_adjtime64',
  'adjtimex',
  'acct',
  'syslog',
  'vhangup',
  'nfsservctl',
  '_sysctl',
  'sysfs',
  'uselib',
  'ustat',
  'iopl',
  'ioperm',
  'vm86',
  'vm86old',
  'get_mempolicy',
  'set_mempolicy',
  'mbind',
  'move_pages',
];

/** clone's namespace flags (CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET): Docker's 0x7E020000. */
export const CLONE_NAMESPACE_FLAGS = [
  0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000,
];

interface SeccompRule {
  names: string[];
  action: 'SCMP_ACT_ERRNO';
  errnoRet: number;
  args?: { index: number; value: number; valueTwo: number; op: 'SCMP_CMP_MASKED_EQ' }[];
}

/** The OCI `linux.seccomp` object. */
export interface SeccompProfile {
  defaultAction: 'SCMP_ACT_ALLOW';
  architectures: string[];
  syscalls: SeccompRule[];
}

export function defaultSeccompProfile(): SeccompProfile {
  return {
    defaultAction: 'SCMP_ACT_ALLOW',
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
    syscalls: [
      { names: [...DENIED_SYSCALLS], action: 'SCMP_ACT_ERRNO', errnoRet: EPERM },
      { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS },
      // One rule per flag: the conditions of one rule are ANDed, its rules are ORed. On x86-64 the flags
      // are clone's first argument.
      ...CLONE_NAMESPACE_FLAGS.map((flag): SeccompRule => ({
        names: ['clone'],
        action: 'SCMP_ACT_ERRNO',
        errnoRet: EPERM,
        args: [{ index: 0, value: flag, valueTwo: flag, op: 'SCMP_CMP_MASKED_EQ' }],
      })),
    ],
  };
}
