//! Resolve a USB `VID:PID[:SERIAL]` match to a tty device path by walking sysfs.
//!
//! USB serial adapters get whatever `/dev/ttyUSBn`/`ttyACMn` name is free
//! when they enumerate, so configs that name the adapter by its USB identity
//! survive re-plugging into another socket or a reboot that reorders them.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Sysfs walk-up bound: real USB trees are ~10 levels deep; a loop in a fake or broken tree must not hang us.
const MAX_WALK_UP: usize = 32;

/// Which USB device a port config means.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UsbMatch {
    /// USB vendor id.
    pub vid: u16,
    /// USB product id.
    pub pid: u16,
    /// The device's `iSerial` string, compared exactly; `None` matches any.
    pub serial: Option<String>,
}

impl fmt::Display for UsbMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04x}:{:04x}", self.vid, self.pid)?;
        if let Some(s) = &self.serial {
            write!(f, ":{s}")?;
        }
        Ok(())
    }
}

/// A `usb = "..."` config string that is not `VID:PID[:SERIAL]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid USB match {input:?}: {why}; expected \"VID:PID[:SERIAL]\" with VID and PID as 4 hex digits, e.g. \"0403:6001\" or \"0403:6001:A10KXYZ\""
)]
pub struct UsbMatchParseError {
    /// The string as configured.
    pub input: String,
    /// What was wrong with it.
    pub why: String,
}

fn parse_hex4(field: &str, what: &str, input: &str) -> Result<u16, UsbMatchParseError> {
    let err = |why: String| UsbMatchParseError {
        input: input.to_owned(),
        why,
    };
    // from_str_radix alone would accept "+12f" or "1f", which no lsusb output looks like.
    if field.len() != 4 || !field.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(err(format!("{what} {field:?} is not 4 hex digits")));
    }
    u16::from_str_radix(field, 16).map_err(|e| err(format!("{what} {field:?}: {e}")))
}

impl FromStr for UsbMatch {
    type Err = UsbMatchParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let input = s.trim();
        // At most 3 parts so a serial containing ':' stays whole.
        let mut parts = input.splitn(3, ':');
        let vid = parts.next().unwrap_or_default();
        let Some(pid) = parts.next() else {
            return Err(UsbMatchParseError {
                input: s.to_owned(),
                why: "missing ':PID'".to_owned(),
            });
        };
        let vid = parse_hex4(vid, "VID", s)?;
        let pid = parse_hex4(pid, "PID", s)?;
        let serial = match parts.next() {
            None => None,
            Some("") => {
                return Err(UsbMatchParseError {
                    input: s.to_owned(),
                    why: "empty SERIAL after the second ':'".to_owned(),
                });
            }
            Some(serial) => Some(serial.to_owned()),
        };
        Ok(UsbMatch { vid, pid, serial })
    }
}

/// Where sysfs and /dev live; tests point these into a temp dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roots {
    /// Usually `/sys`.
    pub sysfs: PathBuf,
    /// Usually `/dev`; `serial/by-id` is looked up under it.
    pub dev: PathBuf,
}

impl Default for Roots {
    fn default() -> Self {
        Roots {
            sysfs: PathBuf::from("/sys"),
            dev: PathBuf::from("/dev"),
        }
    }
}

/// A USB serial tty found in sysfs, listed in errors so an operator can fix the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenDevice {
    /// USB vendor id.
    pub vid: u16,
    /// USB product id.
    pub pid: u16,
    /// The device's serial string, if it has one.
    pub serial: Option<String>,
    /// The tty name, e.g. `ttyUSB0`.
    pub tty: String,
}

impl fmt::Display for SeenDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04x}:{:04x}:{} -> {}",
            self.vid,
            self.pid,
            self.serial.as_deref().unwrap_or("-"),
            self.tty
        )
    }
}

struct SeenList<'a>(&'a [SeenDevice]);

impl fmt::Display for SeenList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// Why a [`UsbMatch`] did not resolve to exactly one tty.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// No USB serial tty has that identity (it may be unplugged).
    #[error("no USB serial device matches {wanted}; USB serial devices present: {}", SeenList(.seen))]
    NotFound {
        /// What the config asked for.
        wanted: UsbMatch,
        /// Every USB serial tty that was seen.
        seen: Vec<SeenDevice>,
    },
    /// More than one tty matches, so picking one would be a guess.
    #[error(
        "{wanted} matches {} ttys: {}; add the serial (VID:PID:SERIAL) or configure a /dev/serial/by-id path",
        .candidates.len(), SeenList(.candidates)
    )]
    Ambiguous {
        /// What the config asked for.
        wanted: UsbMatch,
        /// The matching ttys.
        candidates: Vec<SeenDevice>,
    },
    /// The sysfs tty class directory could not be listed.
    #[error("cannot list {}: {source}", .path.display())]
    Sysfs {
        /// The directory that failed.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// Find the tty for `m`, preferring its stable `/dev/serial/by-id` link when one points at it.
pub fn resolve(m: &UsbMatch, roots: &Roots) -> Result<PathBuf, ResolveError> {
    let seen = usb_ttys(roots)?;
    let mut matching: Vec<SeenDevice> = seen
        .iter()
        .filter(|d| {
            d.vid == m.vid
                && d.pid == m.pid
                && m.serial
                    .as_deref()
                    .is_none_or(|want| d.serial.as_deref() == Some(want))
        })
        .cloned()
        .collect();
    match matching.len() {
        0 => Err(ResolveError::NotFound {
            wanted: m.clone(),
            seen,
        }),
        1 => {
            let dev = matching.remove(0);
            let node = roots.dev.join(&dev.tty);
            Ok(by_id_link_for(&node, roots).unwrap_or(node))
        }
        _ => Err(ResolveError::Ambiguous {
            wanted: m.clone(),
            candidates: matching,
        }),
    }
}

/// Every tty under `<sysfs>/class/tty` that sits on a USB device, sorted by tty name.
pub fn usb_ttys(roots: &Roots) -> Result<Vec<SeenDevice>, ResolveError> {
    let class = roots.sysfs.join("class/tty");
    let entries = fs::read_dir(&class).map_err(|source| ResolveError::Sysfs {
        path: class.clone(),
        source,
    })?;
    // Canonical so the walk-up bound compares like with like even if sysfs is reached via a symlink.
    let sys_root = fs::canonicalize(&roots.sysfs).unwrap_or_else(|_| roots.sysfs.clone());
    let mut seen = Vec::new();
    for entry in entries.flatten() {
        let Some(tty) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        // Virtual ttys (tty0, ptmx, ...) have no `device` link and are skipped here.
        let Ok(device) = fs::canonicalize(entry.path().join("device")) else {
            continue;
        };
        if let Some(usb_dir) = usb_device_dir(&device, &sys_root)
            && let Some(found) = read_identity(&usb_dir, tty)
        {
            seen.push(found);
        }
    }
    seen.sort_by(|a, b| a.tty.cmp(&b.tty));
    Ok(seen)
}

/// Walk up from a tty's device dir to the USB device dir, the first one with `idVendor` and `idProduct`.
fn usb_device_dir(start: &Path, sys_root: &Path) -> Option<PathBuf> {
    let mut dir = start;
    for _ in 0..MAX_WALK_UP {
        if !dir.starts_with(sys_root) || dir == sys_root {
            return None;
        }
        if dir.join("idVendor").is_file() && dir.join("idProduct").is_file() {
            return Some(dir.to_path_buf());
        }
        dir = dir.parent()?;
    }
    None
}

fn read_attr(dir: &Path, name: &str) -> Option<String> {
    let bytes = fs::read(dir.join(name)).ok()?;
    let s = String::from_utf8_lossy(&bytes).trim().to_owned();
    (!s.is_empty()).then_some(s)
}

fn read_identity(usb_dir: &Path, tty: String) -> Option<SeenDevice> {
    let hex = |name| {
        let s = read_attr(usb_dir, name)?;
        u16::from_str_radix(&s, 16).ok()
    };
    Some(SeenDevice {
        vid: hex("idVendor")?,
        pid: hex("idProduct")?,
        serial: read_attr(usb_dir, "serial"),
        tty,
    })
}

/// The `<dev>/serial/by-id` link that points at `node`, if any (first by name, for determinism).
fn by_id_link_for(node: &Path, roots: &Roots) -> Option<PathBuf> {
    let target = fs::canonicalize(node).ok()?;
    let mut links: Vec<PathBuf> = fs::read_dir(roots.dev.join("serial/by-id"))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .collect();
    links.sort();
    links
        .into_iter()
        .find(|link| fs::canonicalize(link).is_ok_and(|t| t == target))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A fake sysfs + dev tree mirroring the real layout of usb-serial and cdc-acm ttys.
    pub(crate) struct FakeTree {
        pub _dir: tempfile::TempDir,
        pub roots: Roots,
    }

    impl FakeTree {
        pub(crate) fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let roots = Roots {
                sysfs: dir.path().join("sys"),
                dev: dir.path().join("dev"),
            };
            fs::create_dir_all(roots.sysfs.join("class/tty")).unwrap();
            fs::create_dir_all(roots.dev.join("serial/by-id")).unwrap();
            let t = FakeTree { _dir: dir, roots };
            // Non-USB ttys that must be skipped: a virtual one and a legacy UART.
            t.add_class_tty("tty0", "devices/virtual/tty/tty0", None);
            fs::create_dir_all(t.roots.sysfs.join("devices/pnp0/00:00/tty/ttyS0")).unwrap();
            t.add_class_tty(
                "ttyS0",
                "devices/pnp0/00:00/tty/ttyS0",
                Some("../../../00:00"),
            );
            t
        }

        fn add_class_tty(&self, name: &str, class_target: &str, device_link: Option<&str>) {
            let real = self.roots.sysfs.join(class_target);
            fs::create_dir_all(&real).unwrap();
            if let Some(dev) = device_link {
                symlink(dev, real.join("device")).unwrap();
            }
            symlink(
                format!("../../{class_target}"),
                self.roots.sysfs.join("class/tty").join(name),
            )
            .unwrap();
            fs::write(self.roots.dev.join(name), b"").unwrap();
        }

        fn write_usb_ids(&self, usb_dev: &str, vid: &str, pid: &str, serial: Option<&str>) {
            let d = self.roots.sysfs.join(usb_dev);
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join("idVendor"), format!("{vid}\n")).unwrap();
            fs::write(d.join("idProduct"), format!("{pid}\n")).unwrap();
            if let Some(s) = serial {
                fs::write(d.join("serial"), format!("{s}\n")).unwrap();
            }
        }

        /// usb-serial (FTDI, CP210x...): class/tty/ttyUSBn/device -> the port dir under the interface.
        pub(crate) fn add_usb_serial(
            &self,
            tty: &str,
            port: &str,
            vid: &str,
            pid: &str,
            serial: Option<&str>,
        ) {
            let usb_dev = format!("devices/pci0000:00/0000:00:14.0/usb1/{port}");
            // The root hub also has idVendor: the walk must stop at the first (deepest) one.
            self.write_usb_ids("devices/pci0000:00/0000:00:14.0/usb1", "1d6b", "0002", None);
            self.write_usb_ids(&usb_dev, vid, pid, serial);
            let iface = format!("{usb_dev}/{port}:1.0");
            fs::create_dir_all(self.roots.sysfs.join(&iface)).unwrap();
            fs::write(
                self.roots.sysfs.join(&iface).join("bInterfaceNumber"),
                "00\n",
            )
            .unwrap();
            self.add_class_tty(
                tty,
                &format!("{iface}/{tty}/tty/{tty}"),
                Some(&format!("../../../{tty}")),
            );
        }

        /// cdc-acm: class/tty/ttyACMn/device -> the interface dir itself.
        pub(crate) fn add_acm(
            &self,
            tty: &str,
            port: &str,
            vid: &str,
            pid: &str,
            serial: Option<&str>,
        ) {
            let usb_dev = format!("devices/pci0000:00/0000:00:14.0/usb1/{port}");
            self.write_usb_ids(&usb_dev, vid, pid, serial);
            let iface = format!("{usb_dev}/{port}:1.0");
            self.add_class_tty(
                tty,
                &format!("{iface}/tty/{tty}"),
                Some(&format!("../../../{port}:1.0")),
            );
        }

        pub(crate) fn add_by_id(&self, name: &str, tty: &str) -> PathBuf {
            let link = self.roots.dev.join("serial/by-id").join(name);
            symlink(format!("../../{tty}"), &link).unwrap();
            link
        }
    }

    fn m(s: &str) -> UsbMatch {
        s.parse().unwrap()
    }

    #[test]
    fn parses_vid_pid_and_serial() {
        assert_eq!(
            m("0403:6001"),
            UsbMatch {
                vid: 0x0403,
                pid: 0x6001,
                serial: None
            }
        );
        assert_eq!(
            m(" 10C4:ea60:0001:x "),
            UsbMatch {
                vid: 0x10c4,
                pid: 0xea60,
                serial: Some("0001:x".into())
            }
        );
        assert_eq!(m("0403:6001:A1B2").to_string(), "0403:6001:A1B2");
        for bad in [
            "",
            "0403",
            "403:6001",
            "0403:60011",
            "+403:6001",
            "04g3:6001",
            "0403:6001:",
        ] {
            let err = bad.parse::<UsbMatch>().unwrap_err().to_string();
            assert!(err.contains("VID:PID[:SERIAL]"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn resolves_usb_serial_and_acm_layouts() {
        let t = FakeTree::new();
        t.add_usb_serial("ttyUSB0", "1-1", "0403", "6001", Some("A1B2C3"));
        t.add_acm("ttyACM0", "1-2", "2341", "0043", None);
        assert_eq!(
            resolve(&m("0403:6001"), &t.roots).unwrap(),
            t.roots.dev.join("ttyUSB0")
        );
        assert_eq!(
            resolve(&m("0403:6001:A1B2C3"), &t.roots).unwrap(),
            t.roots.dev.join("ttyUSB0")
        );
        assert_eq!(
            resolve(&m("2341:0043"), &t.roots).unwrap(),
            t.roots.dev.join("ttyACM0")
        );
        let seen = usb_ttys(&t.roots).unwrap();
        assert_eq!(
            seen.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
            ["2341:0043:- -> ttyACM0", "0403:6001:A1B2C3 -> ttyUSB0"]
        );
    }

    #[test]
    fn not_found_lists_what_was_seen() {
        let t = FakeTree::new();
        t.add_usb_serial("ttyUSB0", "1-1", "0403", "6001", Some("A1B2C3"));
        let err = resolve(&m("0403:6001:OTHER"), &t.roots).unwrap_err();
        assert!(matches!(err, ResolveError::NotFound { .. }));
        let msg = err.to_string();
        assert!(msg.contains("0403:6001:OTHER"), "{msg}");
        assert!(msg.contains("0403:6001:A1B2C3 -> ttyUSB0"), "{msg}");
        let empty = FakeTree::new();
        let msg = resolve(&m("0403:6001"), &empty.roots)
            .unwrap_err()
            .to_string();
        assert!(msg.ends_with("present: none"), "{msg}");
    }

    #[test]
    fn two_without_serial_is_ambiguous_and_serial_disambiguates() {
        let t = FakeTree::new();
        t.add_usb_serial("ttyUSB0", "1-1", "0403", "6001", Some("AAA"));
        t.add_usb_serial("ttyUSB1", "1-3", "0403", "6001", Some("BBB"));
        let err = resolve(&m("0403:6001"), &t.roots).unwrap_err();
        assert!(
            matches!(&err, ResolveError::Ambiguous { candidates, .. } if candidates.len() == 2)
        );
        assert!(err.to_string().contains("ttyUSB1"), "{err}");
        assert_eq!(
            resolve(&m("0403:6001:BBB"), &t.roots).unwrap(),
            t.roots.dev.join("ttyUSB1")
        );
    }

    #[test]
    fn prefers_by_id_link_pointing_at_the_same_tty() {
        let t = FakeTree::new();
        t.add_usb_serial("ttyUSB0", "1-1", "0403", "6001", Some("AAA"));
        t.add_usb_serial("ttyUSB1", "1-3", "0403", "6001", Some("BBB"));
        t.add_by_id("usb-FTDI_FT232R_USB_UART_AAA-if00-port0", "ttyUSB0");
        let b = t.add_by_id("usb-FTDI_FT232R_USB_UART_BBB-if00-port0", "ttyUSB1");
        assert_eq!(resolve(&m("0403:6001:BBB"), &t.roots).unwrap(), b);
    }

    #[test]
    fn missing_sysfs_is_an_error_not_a_panic() {
        let roots = Roots {
            sysfs: PathBuf::from("/nonexistent/sys"),
            dev: PathBuf::from("/nonexistent/dev"),
        };
        let err = resolve(&m("0403:6001"), &roots).unwrap_err();
        assert!(matches!(err, ResolveError::Sysfs { .. }), "{err}");
    }

    #[test]
    fn garbage_sysfs_attributes_are_skipped() {
        let t = FakeTree::new();
        t.add_usb_serial("ttyUSB0", "1-1", "zzzz", "6001", None);
        t.add_acm("ttyACM0", "1-2", "2341", "0043", Some("\u{fffd}ok "));
        let seen = usb_ttys(&t.roots).unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].serial.as_deref(), Some("\u{fffd}ok"));
    }

    #[test]
    fn real_sysfs_does_not_panic() {
        // This machine may have no USB serial at all; only the walk itself is exercised.
        let _ = usb_ttys(&Roots::default());
    }
}
