//! The process series of the Go router's Prometheus process collector, read
//! the same way from `/proc/self` at each scrape and with the same names and
//! meaning: CPU time (user + system), resident memory, open descriptors.

use std::fmt;
use std::fs;
use std::io;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Counter, Gauge};

/// Kernel clock ticks per second as /proc reports times (`USER_HZ`): fixed
/// at 100 by the Linux ABI, and what Go's procfs assumes too.
const USER_HZ: f64 = 100.0;

/// Why a /proc file gave no value.
#[derive(Debug)]
pub enum ProcError {
    Io(io::Error),
    Malformed(&'static str),
}

impl fmt::Display for ProcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcError::Io(e) => write!(f, "{e}"),
            ProcError::Malformed(what) => write!(f, "malformed {what}"),
        }
    }
}

impl From<io::Error> for ProcError {
    fn from(e: io::Error) -> Self {
        ProcError::Io(e)
    }
}

/// User plus system CPU seconds, from fields 14 and 15 of `/proc/self/stat`.
pub fn cpu_seconds() -> Result<f64, ProcError> {
    cpu_seconds_of(&fs::read_to_string("/proc/self/stat")?)
}

fn cpu_seconds_of(stat: &str) -> Result<f64, ProcError> {
    // The command name (field 2) is in parentheses and may hold spaces and
    // parentheses itself: the fields that follow start after the last ')'.
    let (_, rest) = stat
        .rsplit_once(')')
        .ok_or(ProcError::Malformed("/proc/self/stat"))?;
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    // rest starts at field 3 (state): field n is fields[n - 3].
    let ticks = |n: usize| {
        fields
            .get(n - 3)
            .and_then(|f| f.parse::<u64>().ok())
            .ok_or(ProcError::Malformed("/proc/self/stat"))
    };
    Ok((ticks(14)? + ticks(15)?) as f64 / USER_HZ)
}

/// Resident set size in bytes (`VmRSS` of `/proc/self/status`, the same
/// pages as the rss field of stat that Go multiplies by the page size).
pub fn resident_memory_bytes() -> Result<f64, ProcError> {
    resident_memory_bytes_of(&fs::read_to_string("/proc/self/status")?)
}

fn resident_memory_bytes_of(status: &str) -> Result<f64, ProcError> {
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .ok_or(ProcError::Malformed("VmRSS in /proc/self/status"))?;
    Ok((kib * 1024) as f64)
}

/// Open file descriptors: the entries of `/proc/self/fd`. That includes the
/// one the listing holds open while it runs, as Go's count does.
pub fn open_fds() -> Result<f64, ProcError> {
    Ok(fs::read_dir("/proc/self/fd")?.count() as f64)
}

/// Builds the three series at each collect; a value /proc cannot give is
/// left out of that scrape rather than reported as 0.
pub struct ProcessCollector {
    descs: Vec<Desc>,
}

fn series() -> (Counter, Gauge, Gauge) {
    let cpu = Counter::new(
        "process_cpu_seconds_total",
        "Total user and system CPU time spent in seconds.",
    )
    .expect("valid metric");
    let rss = Gauge::new(
        "process_resident_memory_bytes",
        "Resident memory size in bytes.",
    )
    .expect("valid metric");
    let fds =
        Gauge::new("process_open_fds", "Number of open file descriptors.").expect("valid metric");
    (cpu, rss, fds)
}

impl ProcessCollector {
    pub fn new() -> ProcessCollector {
        let (cpu, rss, fds) = series();
        let descs = [cpu.desc(), rss.desc(), fds.desc()]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        ProcessCollector { descs }
    }
}

impl Collector for ProcessCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let (cpu, rss, fds) = series();
        let mut families = Vec::with_capacity(3);
        if let Ok(seconds) = cpu_seconds() {
            cpu.inc_by(seconds);
            families.extend(cpu.collect());
        }
        if let Ok(bytes) = resident_memory_bytes() {
            rss.set(bytes);
            families.extend(rss.collect());
        }
        if let Ok(n) = open_fds() {
            fds.set(n);
            families.extend(fds.collect());
        }
        families
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        // A command name with a space and a ')' of its own; utime 250 and
        // stime 50 ticks are fields 14 and 15.
        let stat =
            "4242 (we ird) R 1 4242 4242 0 -1 4194560 500 0 0 0 250 50 0 0 20 0 3 0 123 1000 200";
        assert_eq!(cpu_seconds_of(stat).unwrap(), 3.0);
        assert!(matches!(
            cpu_seconds_of("4242 no parens"),
            Err(ProcError::Malformed(_))
        ));
        assert!(matches!(
            cpu_seconds_of("4242 (short) R 1"),
            Err(ProcError::Malformed(_))
        ));
    }

    #[test]
    fn resident_memory_is_vmrss_in_bytes() {
        let status = "Name:\trouter\nVmPeak:\t  9000 kB\nVmRSS:\t    1234 kB\nThreads:\t3\n";
        assert_eq!(resident_memory_bytes_of(status).unwrap(), 1234.0 * 1024.0);
        assert!(resident_memory_bytes_of("Name:\trouter\n").is_err());
    }

    #[test]
    fn this_process_has_plausible_values() {
        assert!(cpu_seconds().unwrap() >= 0.0);
        assert!(resident_memory_bytes().unwrap() > 1024.0 * 1024.0);
        // stdout, stderr and the listing's own at least (stdin may be closed).
        assert!(open_fds().unwrap() >= 3.0);
    }
}
