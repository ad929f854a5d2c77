//! Operating-system probes: CPU time and memory of a process from `/proc`, and raising the open-file
//! limit. The only module of the generator with `unsafe` (two libc calls, each commented).
#![allow(unsafe_code)]

use std::fs;

/// CPU seconds (user + system) of process `pid` ("self" for the generator), from `/proc/PID/stat`.
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_cpu_ticks(&stat).map(|ticks| ticks as f64 / clock_ticks_per_second())
}

/// utime + stime (fields 14 and 15) of a `/proc/PID/stat` line. The command name (field 2) may hold
/// spaces and parentheses, so fields are counted from the last ')'.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace().skip(11); // field 3 is the first after ')'
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions; it returns -1 on error, handled below.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// A `kB` field such as `VmRSS` or `VmHWM` of `/proc/PID/status`, in KiB.
pub fn status_kib(pid: &str, field: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_kib(&status, field)
}

fn parse_status_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|l| l.strip_prefix(field)?.strip_prefix(':')?.split_whitespace().next()?.parse().ok())
}

/// Open file descriptors of process `pid` (entries of `/proc/PID/fd`; needs the same user or root).
pub fn fd_count(pid: &str) -> Option<usize> {
    Some(fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

/// Raises the soft `RLIMIT_NOFILE` to at least `want` (bounded by the hard limit). Returns the new
/// soft limit.
#[allow(clippy::unnecessary_cast)] // rlim_t is not u64 on every target
pub fn raise_nofile(want: u64) -> Result<u64, String> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one rlimit into the valid, exclusively borrowed `lim`.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(format!("getrlimit: {}", std::io::Error::last_os_error()));
    }
    if lim.rlim_cur as u64 >= want {
        return Ok(lim.rlim_cur as u64);
    }
    if (lim.rlim_max as u64) < want {
        return Err(format!("need {want} open files but the hard limit is {}; raise it (ulimit -Hn)", lim.rlim_max));
    }
    lim.rlim_cur = want as libc::rlim_t;
    // SAFETY: setrlimit only reads the valid `lim`.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(format!("setrlimit: {}", std::io::Error::last_os_error()));
    }
    Ok(want)
}

pub(crate) mod tests {
    use super::*;

    crate::unit_tests! {
        fn cpu_ticks_are_read_after_a_command_name_with_spaces_and_parens() {
            let stat = "42 (my (odd) name) S 1 42 42 0 -1 4194560 100 0 0 0 250 31 0 0 20 0 1 0 5 0 0";
            assert_eq!(parse_cpu_ticks(stat), Some(281));
        }

        fn status_fields_are_read_in_kib() {
            let status = "Name:\tmosquitto\nVmHWM:\t    9000 kB\nVmRSS:\t    7300 kB\n";
            assert_eq!(parse_status_kib(status, "VmRSS"), Some(7300));
            assert_eq!(parse_status_kib(status, "VmHWM"), Some(9000));
            assert_eq!(parse_status_kib(status, "VmSwap"), None);
        }

        fn the_generator_can_count_its_own_open_files() {
            let before = fd_count("self").expect("/proc/self/fd is readable");
            let file = fs::File::open("/proc/self/stat").expect("open");
            assert_eq!(fd_count("self"), Some(before + 1));
            drop(file);
        }

        fn the_generator_can_read_its_own_cpu_time() {
            assert!(cpu_seconds("self").is_some());
        }
    }
}
