//! The `rvs_test_env` map of the test build (`-DRVS_TEST`): the mocked clock, scripted
//! random draws and packet mark, and the record of the last decision.

use crate::abi::{self, Plain};
use crate::error::{map_err, Result, XdpError};
use crate::loader::Director;

fn map(dir: &Director) -> Result<&crate::sys::RawMap> {
    dir.maps
        .test_env
        .as_ref()
        .ok_or_else(|| XdpError::Other("not the test build: no rvs_test_env".into()))
}

pub fn read(dir: &Director) -> Result<abi::TestEnv> {
    let mut e = abi::TestEnv::default();
    map(dir)?
        .lookup(&0u32.to_ne_bytes(), e.as_bytes_mut(), 0)
        .map_err(map_err("rvs_test_env"))?;
    Ok(e)
}

pub fn write(dir: &Director, e: &abi::TestEnv) -> Result<()> {
    map(dir)?
        .update(&0u32.to_ne_bytes(), e.as_bytes(), 0)
        .map_err(map_err("rvs_test_env"))
}

/// The mocked clock.
pub fn now(dir: &Director) -> Result<u64> {
    Ok(read(dir)?.now_ns)
}

pub fn set_now(dir: &Director, now_ns: u64) -> Result<()> {
    let mut e = read(dir)?;
    e.now_ns = now_ns;
    write(dir, &e)
}

/// The mark the next packets carry (fwmark services).
pub fn set_mark(dir: &Director, mark: u32) -> Result<()> {
    let mut e = read(dir)?;
    e.fwmark = mark;
    write(dir, &e)
}

/// Queues random draws; the queue restarts when the previous script was used up.
pub fn push_draws(dir: &Director, draws: &[u32]) -> Result<()> {
    let mut e = read(dir)?;
    if e.next_draw >= e.n_draws {
        e.n_draws = 0;
        e.next_draw = 0;
        e.draws = [0; 16];
        e.bounds = [0; 16];
    }
    for d in draws {
        if e.n_draws as usize >= e.draws.len() {
            return Err(XdpError::Other("too many scripted draws".into()));
        }
        e.draws[e.n_draws as usize] = *d;
        e.n_draws += 1;
    }
    write(dir, &e)
}
