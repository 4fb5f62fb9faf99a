//! Who holds a rotation job's lease, and whether the holder of a lease is still alive: a process
//! is known by a random instance id drawn when it starts, its pid, and where that pid means
//! something (the host's boot, its pid namespace, its hostname). A restarted daemon that got its
//! predecessor's pid back (PID 1 in a container) takes the dead lease over at once; a holder
//! whose pid cannot be probed from here (another container, another boot) keeps its lease until
//! it expires, and a live holder renews it.

use crate::store::Lease;

/// Where Linux publishes the id of the current boot.
const BOOT_ID_PATH: &str = "/proc/sys/kernel/random/boot_id";
/// This process's pid namespace (`pid:[4026531836]`).
const PID_NS_PATH: &str = "/proc/self/ns/pid";
/// The hostname: a container's name (its id for Docker and Podman, the pod's name in Kubernetes)
/// stays the same across restarts of that container.
const HOSTNAME_PATH: &str = "/proc/sys/kernel/hostname";

/// Where a pid means something: the host's boot, the pid namespace, and the hostname.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Place {
    pub boot: Option<String>,
    pub pid_ns: Option<String>,
    pub hostname: Option<String>,
}

impl Place {
    /// This process's place, read from `/proc` (all `None` outside Linux).
    pub fn here() -> Self {
        Self {
            boot: read_trimmed(BOOT_ID_PATH),
            pid_ns: std::fs::read_link(PID_NS_PATH)
                .ok()
                .map(|p| p.display().to_string()),
            hostname: read_trimmed(HOSTNAME_PATH),
        }
    }

    /// As stored with a lease: `boot=<id> pidns=<ns> host=<name>`, `-` for an unknown part.
    pub fn encode(&self) -> String {
        let part = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        format!(
            "boot={} pidns={} host={}",
            part(&self.boot),
            part(&self.pid_ns),
            part(&self.hostname)
        )
    }

    /// The place a lease stored; parts that are missing or `-` are unknown.
    pub fn decode(text: &str) -> Self {
        let mut place = Self::default();
        for word in text.split_whitespace() {
            let Some((key, value)) = word.split_once('=') else {
                continue;
            };
            let value = (value != "-" && !value.is_empty()).then(|| value.to_owned());
            match key {
                "boot" => place.boot = value,
                "pidns" => place.pid_ns = value,
                "host" => place.hostname = value,
                _ => {}
            }
        }
        place
    }
}

/// Whether two optional parts are known and equal.
fn same(a: &Option<String>, b: &Option<String>) -> bool {
    matches!((a, b), (Some(a), Some(b)) if a == b)
}

/// This process as a lease holder. Made once per process start, where the daemon (or
/// `opsync rotate now`) builds its [`Rotator`](crate::rotation::Rotator), and cloned into
/// everything of that process that takes leases.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    instance: String,
    pid: i64,
    place: Place,
}

impl Holder {
    /// A new identity for this process: a fresh random instance id, its pid and its place.
    pub fn this_process() -> Self {
        Self::new(
            format!("{:032x}", rand::random::<u128>()),
            i64::from(std::process::id()),
            Place::here(),
        )
    }

    /// A given identity (tests make up the holder a previous process left behind).
    pub fn new(instance: impl Into<String>, pid: i64, place: Place) -> Self {
        Self {
            instance: instance.into(),
            pid,
            place,
        }
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    pub fn pid(&self) -> i64 {
        self.pid
    }

    pub fn place(&self) -> &Place {
        &self.place
    }

    /// The lease `owner` takes for this holder, until `until`.
    pub fn lease(&self, owner: &str, until: chrono::DateTime<chrono::Utc>) -> Lease {
        Lease {
            owner: owner.to_owned(),
            pid: self.pid,
            until,
            instance: Some(self.instance.clone()),
            place: Some(self.place.encode()),
        }
    }

    /// Whether the process holding `lease` (another owner's, not yet expired) still runs, as
    /// this process sees it; `pid_exists` probes a pid in this pid namespace (`kill(pid, 0)`).
    ///
    /// - Our own instance id: this process holds it (another runner of ours): alive.
    /// - Same boot and pid namespace: our pid means the holder is dead and we got its pid back;
    ///   another pid is alive while `pid_exists`.
    /// - Same boot and hostname, another pid namespace, our pid: the same container restarted
    ///   (a new namespace, PID 1 again): dead.
    /// - Anywhere else (another container, another boot, or unknown): its pid cannot be probed
    ///   from here, so it is alive until the lease expires (a live holder renews it).
    /// - No instance id (taken by a build before schema version 6): alive while its pid exists
    ///   and is not ours.
    pub fn lease_alive(&self, lease: &Lease, pid_exists: impl Fn(i64) -> bool) -> bool {
        let Some(instance) = lease.instance.as_deref() else {
            return lease.pid != self.pid && pid_exists(lease.pid);
        };
        if instance == self.instance {
            return true;
        }
        let theirs = lease
            .place
            .as_deref()
            .map(Place::decode)
            .unwrap_or_default();
        let ours = &self.place;
        if !same(&theirs.boot, &ours.boot) {
            return true;
        }
        if same(&theirs.pid_ns, &ours.pid_ns) {
            return lease.pid != self.pid && pid_exists(lease.pid);
        }
        let restarted_here = same(&theirs.hostname, &ours.hostname) && lease.pid == self.pid;
        !restarted_here
    }
}

/// A one-line file's content, trimmed; `None` if it cannot be read or is empty.
fn read_trimmed(path: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// Whether a process with this pid exists on this host (in this pid namespace).
pub(crate) fn pid_exists(pid: i64) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill(2) with signal 0 only checks for existence and permission.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(instance: Option<&str>, pid: i64, place: &Place) -> Lease {
        Lease {
            owner: "other".into(),
            pid,
            until: chrono::Utc::now(),
            instance: instance.map(str::to_owned),
            place: Some(place.encode()),
        }
    }

    fn place(boot: &str, ns: &str, host: &str) -> Place {
        Place {
            boot: Some(boot.into()),
            pid_ns: Some(ns.into()),
            hostname: Some(host.into()),
        }
    }

    #[test]
    fn a_holder_is_known_by_instance_pid_and_place() {
        let here = place("boot-a", "ns-1", "web-1");
        let me = Holder::new("me", 1, here.clone());
        let every_pid_exists = |_| true;
        // Ours: alive, whatever the pid says.
        assert!(me.lease_alive(&held(Some("me"), 1, &here), |_| false));
        // Our pid, another instance, same namespace: a previous process whose pid we got back.
        assert!(!me.lease_alive(&held(Some("old"), 1, &here), every_pid_exists));
        // Another pid in our namespace: kill(pid, 0) decides.
        assert!(me.lease_alive(&held(Some("old"), 2, &here), every_pid_exists));
        assert!(!me.lease_alive(&held(Some("old"), 2, &here), |_| false));
        // The same container restarted: new pid namespace, same hostname, PID 1 again.
        let before_restart = place("boot-a", "ns-0", "web-1");
        assert!(!me.lease_alive(&held(Some("old"), 1, &before_restart), every_pid_exists));
        // Another container on this host, also PID 1: alive until its lease expires.
        let other_container = place("boot-a", "ns-2", "web-2");
        assert!(me.lease_alive(&held(Some("old"), 1, &other_container), |_| false));
        // Another boot, or a place unknown: cannot be probed from here, so alive.
        let other_boot = place("boot-b", "ns-1", "web-1");
        assert!(me.lease_alive(&held(Some("old"), 1, &other_boot), |_| false));
        assert!(me.lease_alive(&held(Some("old"), 1, &Place::default()), |_| false));
        // A lease of an older build (no instance id): its pid, unless it is ours.
        let old = |pid| Lease {
            instance: None,
            place: None,
            ..held(None, pid, &here)
        };
        assert!(me.lease_alive(&old(2), every_pid_exists));
        assert!(!me.lease_alive(&old(2), |_| false));
        assert!(!me.lease_alive(&old(1), every_pid_exists));
    }

    #[test]
    fn a_place_survives_its_encoding() {
        let p = place("b0", "pid:[4026531836]", "web-1");
        assert_eq!(Place::decode(&p.encode()), p);
        assert_eq!(Place::decode(&Place::default().encode()), Place::default());
    }

    #[test]
    fn this_process_draws_a_new_instance_each_time_and_probes_its_own_pid() {
        let (a, b) = (Holder::this_process(), Holder::this_process());
        assert_ne!(a.instance(), b.instance());
        assert_eq!(a.pid(), i64::from(std::process::id()));
        assert_eq!(a.place(), b.place());
        if cfg!(target_os = "linux") {
            assert!(a.place().boot.is_some() && a.place().pid_ns.is_some());
        }
        assert!(pid_exists(a.pid()));
        assert!(!pid_exists(0));
        assert!(!pid_exists(-1));
    }
}
