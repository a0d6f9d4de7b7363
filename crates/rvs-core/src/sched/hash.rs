//! The two hash functions the IPVS schedulers depend on, bit for bit.
//!
//! * [`hash_32`] — the multiplicative "golden ratio" hash of `include/linux/hash.h`
//!   (generic version; x86-64 and arm64 do not override it). dh, sh, lblc and lblcr index
//!   their tables with it.
//! * [`hsiphash`] / [`hsiphash_u32`] — the kernel's `hsiphash` as built on **64-bit**
//!   kernels (`lib/siphash.c`): there the "half" SipHash is in fact SipHash-1-3 with 64-bit
//!   key words, and only the low 32 bits of the 64-bit result are returned. mh uses it to
//!   place servers and to look clients up. (32-bit kernels run the real HalfSipHash-1-3 and
//!   therefore build different Maglev tables; rvs follows the 64-bit variant.)
//!
//! Both are specifications, so the tests pin them to published vectors: the SipHash
//! authors' SipHash-2-4 vectors (which exercise the same round function) and the kernel's
//! own self-test vectors for the 64-bit `hsiphash`.

use std::net::IpAddr;

/// `GOLDEN_RATIO_32`: 2^32 · (1 − φ⁻¹), odd, so the multiplication is a bijection.
const GOLDEN_RATIO_32: u32 = 0x61C8_8647;

/// `hash_32(val, bits)`: multiply by the golden ratio and keep the `bits` high bits,
/// which are the well-mixed ones. `bits` must be in `1..=32`.
pub fn hash_32(val: u32, bits: u32) -> u32 {
    debug_assert!((1..=32).contains(&bits));
    val.wrapping_mul(GOLDEN_RATIO_32) >> (32 - bits)
}

/// The address folded to 32 bits in host order, as every address-hashing scheduler does:
/// an IPv4 address as is, an IPv6 address as the XOR of its four 32-bit words. (The kernel
/// XORs the big-endian words and then byte-swaps; XOR commutes with the swap.)
pub fn addr_fold(addr: &IpAddr) -> u32 {
    match addr {
        IpAddr::V4(a) => u32::from(*a),
        IpAddr::V6(a) => {
            let w = a.octets();
            (0..4)
                .map(|i| u32::from_be_bytes([w[4 * i], w[4 * i + 1], w[4 * i + 2], w[4 * i + 3]]))
                .fold(0, |x, y| x ^ y)
        }
    }
}

/// "somepseudorandomlygeneratedbytes", the SipHash initialisation constants.
const SIP_INIT: [u64; 4] = [
    0x736f_6d65_7073_6575,
    0x646f_7261_6e64_6f6d,
    0x6c79_6765_6e65_7261,
    0x7465_6462_7974_6573,
];

#[derive(Clone, Copy)]
struct SipState([u64; 4]);

impl SipState {
    fn new(key: (u64, u64)) -> Self {
        let [c0, c1, c2, c3] = SIP_INIT;
        SipState([c0 ^ key.0, c1 ^ key.1, c2 ^ key.0, c3 ^ key.1])
    }

    /// One SipRound (the ARX permutation of the SipHash paper).
    #[inline(always)]
    fn round(&mut self) {
        let [mut v0, mut v1, mut v2, mut v3] = self.0;
        v0 = v0.wrapping_add(v1);
        v1 = v1.rotate_left(13) ^ v0;
        v0 = v0.rotate_left(32);
        v2 = v2.wrapping_add(v3);
        v3 = v3.rotate_left(16) ^ v2;
        v0 = v0.wrapping_add(v3);
        v3 = v3.rotate_left(21) ^ v0;
        v2 = v2.wrapping_add(v1);
        v1 = v1.rotate_left(17) ^ v2;
        v2 = v2.rotate_left(32);
        self.0 = [v0, v1, v2, v3];
    }

    #[inline(always)]
    fn compress(&mut self, m: u64, rounds: u32) {
        self.0[3] ^= m;
        for _ in 0..rounds {
            self.round();
        }
        self.0[0] ^= m;
    }

    #[inline(always)]
    fn finish(mut self, rounds: u32) -> u64 {
        self.0[2] ^= 0xff;
        for _ in 0..rounds {
            self.round();
        }
        let [v0, v1, v2, v3] = self.0;
        v0 ^ v1 ^ v2 ^ v3
    }
}

/// SipHash-c-d over a byte string: little-endian 64-bit words, the tail packed below the
/// length byte in the last word.
fn siphash_cd(c: u32, d: u32, key: (u64, u64), data: &[u8]) -> u64 {
    let mut s = SipState::new(key);
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        s.compress(u64::from_le_bytes(w.try_into().expect("8 bytes")), c);
    }
    let mut last = (data.len() as u64) << 56;
    for (i, b) in words.remainder().iter().enumerate() {
        last |= (*b as u64) << (8 * i);
    }
    s.compress(last, c);
    s.finish(d)
}

/// The kernel's `hsiphash(data, len, key)` on a 64-bit kernel: SipHash-1-3, truncated.
pub fn hsiphash(key: (u64, u64), data: &[u8]) -> u32 {
    siphash_cd(1, 3, key, data) as u32
}

/// `hsiphash(&v, 4, key)` for a `u32` held in memory on a little-endian machine (x86-64,
/// arm64): the four bytes of `v` are the whole message, so the single block is
/// `4 << 56 | v`. This is what `ip_vs_mh.c` hashes.
pub fn hsiphash_u32(v: u32, key: (u64, u64)) -> u32 {
    let mut s = SipState::new(key);
    s.compress((4u64 << 56) | v as u64, 1);
    s.finish(3) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Key bytes 00..0f, as both reference test suites use.
    const KEY: (u64, u64) = (0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908);

    fn message(len: usize) -> Vec<u8> {
        (0..len as u8).collect()
    }

    /// First vectors of the SipHash authors' `vectors.h` (SipHash-2-4, message 00 01 ..).
    /// Passing them proves the round function, key schedule and tail packing.
    #[test]
    fn siphash24_matches_reference_vectors() {
        let expected: [u64; 9] = [
            0x726f_db47_dd0e_0e31,
            0x74f8_39c5_93dc_67fd,
            0x0d6c_8009_d9a9_4f5a,
            0x8567_6696_d7fb_7e2d,
            0xcf27_94e0_2771_87b7,
            0x1876_5564_cd99_a68d,
            0xcbc9_466e_58fe_e3ce,
            0xab02_00f5_8b01_d137,
            0x93f5_f579_9a93_2462,
        ];
        for (len, want) in expected.iter().enumerate() {
            assert_eq!(siphash_cd(2, 4, KEY, &message(len)), *want, "len {len}");
        }
        assert_eq!(siphash_cd(2, 4, KEY, &message(63)), 0x958a_324c_eb06_4572);
    }

    /// The kernel's self-test vectors for `hsiphash` with `BITS_PER_LONG == 64`
    /// (`lib/tests/siphash_kunit.c`, `test_vectors_hsiphash`), lengths 0..=16 and 63.
    #[test]
    fn hsiphash_matches_kernel_64bit_vectors() {
        let expected: [u32; 17] = [
            0x050f_c4dc,
            0x7d57_ca93,
            0x4dc7_d44d,
            0xe7dd_f7fb,
            0x88d3_8328,
            0x4953_3b67,
            0xc59f_22a7,
            0x9bb1_1140,
            0x8d29_9a8e,
            0x6c06_3de4,
            0x92ff_097f,
            0xf94d_c352,
            0x57b4_d9a2,
            0x1229_ffa7,
            0xc0f9_5d34,
            0x2a51_9956,
            0x7d90_8b66,
        ];
        for (len, want) in expected.iter().enumerate() {
            assert_eq!(hsiphash(KEY, &message(len)), *want, "len {len}");
        }
        assert_eq!(hsiphash(KEY, &message(63)), 0xb7bb_b3a8);
    }

    /// `hsiphash_1u32(0x03020100)` is the 4-byte message 00 01 02 03 (kernel self-test).
    #[test]
    fn hsiphash_u32_is_the_four_byte_message() {
        assert_eq!(hsiphash_u32(0x0302_0100, KEY), 0x88d3_8328);
        for v in [0u32, 1, 0xdead_beef, u32::MAX] {
            assert_eq!(hsiphash_u32(v, KEY), hsiphash(KEY, &v.to_le_bytes()));
        }
    }

    /// Products worked by hand (mod 2^32), then the top `bits` bits.
    #[test]
    fn hash_32_keeps_the_high_bits_of_the_golden_ratio_product() {
        assert_eq!(hash_32(0, 8), 0);
        assert_eq!(hash_32(1, 8), 0x61);
        assert_eq!(hash_32(1, 10), 0x61C8_8647 >> 22);
        assert_eq!(hash_32(2, 32), 0xC391_0C8E);
        // 10.0.0.1 = 0x0a000001. Of 0x0a000000 · 0x61C88647 only 0x0a · 0x47 = 0x2c6
        // reaches bits 24..31, giving 0xc6000000; adding 0x61C88647 wraps to 0x27c88647.
        assert_eq!(0x0a00_0001u32.wrapping_mul(0x61C8_8647), 0x27c8_8647);
        assert_eq!(hash_32(0x0a00_0001, 8), 0x27);
    }

    #[test]
    fn ipv6_fold_xors_the_four_words() {
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(addr_fold(&a), 0x2001_0db8 ^ 1);
        let b: IpAddr = "10.1.2.3".parse().unwrap();
        assert_eq!(addr_fold(&b), 0x0a01_0203);
    }
}
