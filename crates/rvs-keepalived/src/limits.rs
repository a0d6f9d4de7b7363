//! Bounds on what one load may read, so a hostile or broken configuration is refused in
//! bounded time and memory instead of wedging `rvsd -t` or a reload (issue 10).
//!
//! Every bound is far above any real configuration (a site with thousands of virtual
//! servers has a few MiB of configuration, lines of a few hundred characters and blocks
//! nested 5 deep). Where keepalived itself has a bound it is named beside ours; where it
//! has none, keepalived reads until it runs out of memory, stack or file descriptors.
//!
//! Files are opened without blocking and must be regular files: a FIFO would block the
//! reader forever and `/dev/zero` never ends (keepalived's `check_glob_file` also skips
//! anything but regular files).

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// Bounds of one load; [`Limits::default`] is what rvsd uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of one file (keepalived: none).
    pub file_bytes: u64,
    /// Bytes read from all files of a load together, includes counted each time they are
    /// read (keepalived: none).
    pub read_bytes: u64,
    /// Characters of one logical line: a physical line, lines joined by a trailing `\`,
    /// and a line after `$NAME` substitution (keepalived: `MAXBUF`, 1024 bytes; longer
    /// lines are ignored, longer substitutions refused).
    pub line_chars: usize,
    /// Characters produced by all `$NAME` substitution rounds of a load together: a
    /// definition that refers to another twice doubles at each level (keepalived: bounded
    /// only by its line length).
    pub expanded_chars: usize,
    /// Blocks nested in one another (keepalived: none; its parser recurses per level).
    pub depth: usize,
    /// Includes nested in one another; an include of a file already being read is a cycle
    /// and refused whatever the depth (keepalived: none, until it runs out of descriptors).
    pub include_depth: usize,
    /// Files read by one load, each include counted (keepalived: none).
    pub files: usize,
    /// Keyword lines and braces of one load (their memory is what a load costs).
    pub items: usize,
    /// Diagnostics kept of each severity; beyond them one line says how many more there
    /// were.
    pub diagnostics: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            file_bytes: 16 << 20,
            read_bytes: 64 << 20,
            line_chars: 64 << 10,
            expanded_chars: 64 << 20,
            depth: 64,
            include_depth: 32,
            files: 10_000,
            items: 2_000_000,
            diagnostics: 1000,
        }
    }
}

/// Identity of a file (device, inode): how an include cycle is recognised whatever path
/// names the file.
pub type FileId = (u64, u64);

/// Why a configuration file was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Io(#[from] io::Error),
    /// A FIFO, a device, a socket or a directory.
    #[error("not a regular file ({0})")]
    NotRegular(&'static str),
    #[error("larger than {max} bytes")]
    TooLarge { max: u64 },
}

impl ReadError {
    /// A file no include variant may skip quietly: reading it could block or never end.
    pub fn is_hostile(&self) -> bool {
        !matches!(self, ReadError::Io(_))
    }

    /// As an `io::Error`, for [`crate::LoadError::NotFound`].
    pub fn into_io(self) -> io::Error {
        match self {
            ReadError::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidInput, other.to_string()),
        }
    }
}

fn kind_name(ft: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

/// Reads a configuration file of at most `max` bytes: opened without blocking (a FIFO
/// with no writer returns at once), checked to be a regular file on the descriptor that
/// is read (no race with a rename), read no further than `max + 1` bytes whatever the
/// file claims its size is (`/proc` files say 0).
pub fn read_file(path: &Path, max: u64) -> Result<(String, FileId), ReadError> {
    let f = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)?;
    let md = f.metadata()?;
    if !md.file_type().is_file() {
        return Err(ReadError::NotRegular(kind_name(md.file_type())));
    }
    if md.len() > max {
        return Err(ReadError::TooLarge { max });
    }
    let mut buf = Vec::with_capacity(md.len() as usize);
    f.take(max + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > max {
        return Err(ReadError::TooLarge { max });
    }
    let text = String::from_utf8(buf).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        )
    })?;
    Ok((text, (md.dev(), md.ino())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_fifos_and_directories_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo on a NUL-terminated path of our temporary directory.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let t = std::time::Instant::now();
        assert!(matches!(
            read_file(&fifo, 1 << 20),
            Err(ReadError::NotRegular("a FIFO"))
        ));
        assert!(
            t.elapsed() < std::time::Duration::from_secs(1),
            "blocked on the FIFO"
        );
        assert!(matches!(
            read_file(Path::new("/dev/zero"), 1 << 20),
            Err(ReadError::NotRegular("a character device"))
        ));
        assert!(matches!(
            read_file(dir.path(), 1 << 20),
            Err(ReadError::NotRegular("a directory"))
        ));
    }

    #[test]
    fn a_file_over_the_limit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("big.conf");
        std::fs::write(&f, vec![b'#'; 1001]).unwrap();
        assert!(matches!(
            read_file(&f, 1000),
            Err(ReadError::TooLarge { max: 1000 })
        ));
        assert_eq!(read_file(&f, 1001).unwrap().0.len(), 1001);
    }
}
