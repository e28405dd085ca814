// The Pod Security Standards' "restricted" profile (which includes "baseline"), as the Kubernetes docs
// state its rules (concepts/security/pod-security-standards), checked on one pod spec offline: what the
// PodSecurity admission controller with `enforce: restricted` would refuse.
//   in:  a pod spec (Deployment/StatefulSet spec.template.spec, or a Pod's spec)
//   out: the violations, one line each naming the field; [] when the pod would be admitted.

/** Baseline: capabilities a container may add (restricted narrows this to NET_BIND_SERVICE). */
const RESTRICTED_ADDABLE_CAPABILITIES = new Set(['NET_BIND_SERVICE']);
/** Restricted: the only volume types allowed. */
const RESTRICTED_VOLUME_TYPES = new Set(['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret']);
/** Baseline: sysctls that may be set. */
const SAFE_SYSCTLS = new Set([
  'kernel.shm_rmid_forced',
  'net.ipv4.ip_local_port_range',
  'net.ipv4.ip_unprivileged_port_start',
  'net.ipv4.tcp_syncookies',
  'net.ipv4.ping_group_range',
  'net.ipv4.ip_local_reserved_ports',
  'net.ipv4.tcp_keepalive_time',
  'net.ipv4.tcp_fin_timeout',
  'net.ipv4.tcp_keepalive_intvl',
  'net.ipv4.tcp_keepalive_probes',
]);
const SELINUX_TYPES = new Set(['container_t', 'container_init_t', 'container_kvm_t', 'container_engine_t']);
const APPARMOR_TYPES = new Set(['RuntimeDefault', 'Localhost']);
const SECCOMP_TYPES = new Set(['RuntimeDefault', 'Localhost']);

export function restrictedViolations(pod) {
  const violations = [];
  const fail = (field, message) => violations.push(`${field}: ${message}`);
  const podContext = pod.securityContext ?? {};
  const containers = [
    ...(pod.initContainers ?? []).map((c) => ['initContainers', c]),
    ...(pod.containers ?? []).map((c) => ['containers', c]),
    ...(pod.ephemeralContainers ?? []).map((c) => ['ephemeralContainers', c]),
  ];

  // baseline: host namespaces, host ports, hostPath, HostProcess, /proc mount, sysctls, SELinux, AppArmor
  for (const field of ['hostNetwork', 'hostPID', 'hostIPC']) if (pod[field] === true) fail(`spec.${field}`, 'must be unset or false');
  if (podContext.windowsOptions?.hostProcess === true) fail('spec.securityContext.windowsOptions.hostProcess', 'must be unset or false');
  for (const sysctl of podContext.sysctls ?? []) if (!SAFE_SYSCTLS.has(sysctl.name)) fail('spec.securityContext.sysctls', `${sysctl.name} is not a safe sysctl`);
  checkSeLinux(podContext.seLinuxOptions, 'spec.securityContext.seLinuxOptions', fail);
  checkAppArmor(podContext.appArmorProfile, 'spec.securityContext.appArmorProfile', fail);
  // restricted: volume types
  for (const volume of pod.volumes ?? []) {
    const types = Object.keys(volume).filter((key) => key !== 'name');
    for (const type of types) if (!RESTRICTED_VOLUME_TYPES.has(type)) fail(`spec.volumes[${volume.name}]`, `type ${type} is not allowed`);
  }
  // restricted: seccomp at pod level, or on every container
  const podSeccomp = podContext.seccompProfile?.type;
  if (podSeccomp !== undefined && !SECCOMP_TYPES.has(podSeccomp)) fail('spec.securityContext.seccompProfile.type', `${podSeccomp} is not RuntimeDefault or Localhost`);
  if (podContext.runAsNonRoot === false) fail('spec.securityContext.runAsNonRoot', 'must not be false');
  if (podContext.runAsUser === 0) fail('spec.securityContext.runAsUser', 'must not be 0');

  for (const [list, c] of containers) {
    const at = `spec.${list}[${c.name}]`;
    const context = c.securityContext ?? {};
    if (context.privileged === true) fail(`${at}.securityContext.privileged`, 'must be unset or false');
    if (context.windowsOptions?.hostProcess === true) fail(`${at}.securityContext.windowsOptions.hostProcess`, 'must be unset or false');
    if (context.procMount !== undefined && context.procMount !== 'Default') fail(`${at}.securityContext.procMount`, 'must be unset or Default');
    for (const port of c.ports ?? []) if (port.hostPort !== undefined && port.hostPort !== 0) fail(`${at}.ports`, `hostPort ${port.hostPort} is not allowed`);
    checkSeLinux(context.seLinuxOptions, `${at}.securityContext.seLinuxOptions`, fail);
    checkAppArmor(context.appArmorProfile, `${at}.securityContext.appArmorProfile`, fail);
    if (context.allowPrivilegeEscalation !== false) fail(`${at}.securityContext.allowPrivilegeEscalation`, 'must be false');
    const runAsNonRoot = context.runAsNonRoot ?? podContext.runAsNonRoot;
    if (runAsNonRoot !== true) fail(`${at}.securityContext.runAsNonRoot`, 'must be true (here or in the pod securityContext)');
    if (context.runAsUser === 0) fail(`${at}.securityContext.runAsUser`, 'must not be 0');
    const seccomp = context.seccompProfile?.type ?? podSeccomp;
    if (!SECCOMP_TYPES.has(seccomp)) fail(`${at}.securityContext.seccompProfile.type`, 'must be RuntimeDefault or Localhost (here or in the pod securityContext)');
    const drop = context.capabilities?.drop ?? [];
    if (!drop.includes('ALL')) fail(`${at}.securityContext.capabilities.drop`, 'must include ALL');
    for (const capability of context.capabilities?.add ?? []) {
      if (!RESTRICTED_ADDABLE_CAPABILITIES.has(capability)) fail(`${at}.securityContext.capabilities.add`, `${capability} may not be added`);
    }
  }
  return violations;
}

function checkSeLinux(options, field, fail) {
  if (options === undefined) return;
  if (options.type !== undefined && options.type !== '' && !SELINUX_TYPES.has(options.type)) fail(`${field}.type`, `${options.type} is not allowed`);
  if (options.user) fail(`${field}.user`, 'must be unset');
  if (options.role) fail(`${field}.role`, 'must be unset');
}

function checkAppArmor(profile, field, fail) {
  if (profile !== undefined && !APPARMOR_TYPES.has(profile.type)) fail(`${field}.type`, `${profile.type} is not RuntimeDefault or Localhost`);
}
