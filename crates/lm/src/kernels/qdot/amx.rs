//! Intel AMX panels: 16 weight rows against up to 16 activation rows per call, the integer
//! products on the tile unit (`tdpbsud` / `tdpbssd`: a 16 × 16 block of 32-value dot products
//! per instruction, where the 512-bit VNNI tile needs one `vpdpbusd` per activation row and
//! 64 values, plus a reduction tree).
//!
//! Per group of 32 values `g` (one weight block of Q4_0 / Q4_1 / Q8_0):
//! * the activation tile `A` is read in place from [`QActs::qs`] (rows `t0..t0 + m`, 32 bytes
//!   each, the row stride of the activations);
//! * the weight tile `B` is built in a 512-byte buffer in the tile unit's VNNI order (row `r`
//!   holds values `4r..4r + 4` of each of the 16 weight rows): the 16 rows' block bytes loaded
//!   and transposed by 4-byte words (`words16`), nibbles split with a mask and a shift;
//! * `C = A · B` (16 × 16 exact `i32` sums of the group) is stored and scaled into f32
//!   accumulators, one per activation row: `acc += Σuq · (d_x · a) + s_x · b`, the identity of
//!   the module documentation, in the same order per group as [`super::portable_tile`].
//!
//! The tile unit must be enabled per process on Linux (`arch_prctl(ARCH_REQ_XCOMP_PERM,
//! XFEATURE_XTILEDATA)`); [`available`] asks once and says whether the CPU (CPUID leaf 7:
//! AMX-TILE, AMX-INT8), the kernel and AVX-512 allow it. The instructions are written as inline
//! assembly (stable Rust has no AMX intrinsics); every other step uses AVX-512 intrinsics.

// Accumulators indexed by activation row, as the description reads.
#![allow(clippy::needless_range_loop)]

use std::arch::asm;
use std::arch::x86_64::*;
use std::sync::OnceLock;

use super::{QActs, QK, QType};

/// Weight rows per panel (the tile unit's 16 columns of `i32` results).
pub const ROWS: usize = 16;

/// Activation rows per panel at most (the tile unit's 16 rows).
pub const TOKENS: usize = 16;

/// `arch_prctl` codes (Linux `asm/prctl.h`) and the tile-data state component.
const ARCH_GET_XCOMP_PERM: u64 = 0x1022;
const ARCH_REQ_XCOMP_PERM: u64 = 0x1023;
const XFEATURE_XTILEDATA: u64 = 18;
const SYS_ARCH_PRCTL: u64 = 158;

/// Whether the AMX panels can run here: the CPU has AMX-TILE, AMX-INT8 and AVX-512 F/BW/VL,
/// F16C, and the kernel granted this process the tile state. Asked once per process.
pub fn available() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| {
        if !(crate::kernels::has_avx512() && super::has_avx2()) {
            return false;
        }
        // SAFETY: CPUID is present on every x86_64 CPU.
        #[allow(unused_unsafe)]
        let leaf7 = unsafe { __cpuid_count(7, 0) };
        let (tile, int8) = (leaf7.edx & (1 << 24) != 0, leaf7.edx & (1 << 25) != 0);
        if !(tile && int8) {
            return false;
        }
        request_tile_state()
    })
}

/// Asks Linux for the tile-data state (once per process; threads share the grant) and checks
/// that it was granted.
fn request_tile_state() -> bool {
    // SAFETY: an integer argument; the kernel touches no memory of ours.
    if unsafe { arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) } != 0 {
        return false;
    }
    let mut mask = 0u64;
    // SAFETY: the kernel writes one u64 at the pointer, which points at `mask`.
    let ret = unsafe { arch_prctl(ARCH_GET_XCOMP_PERM, &mut mask as *mut u64 as u64) };
    ret == 0 && mask & (1 << XFEATURE_XTILEDATA) != 0
}

/// The `arch_prctl(code, arg)` system call; its return value (0, or a negated `errno`).
///
/// # Safety
/// Where `code` makes the kernel write through `arg`, `arg` points at memory it may write.
unsafe fn arch_prctl(code: u64, arg: u64) -> i64 {
    let ret: i64;
    // SAFETY: as the caller guarantees; `syscall` clobbers rcx and r11 only.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") SYS_ARCH_PRCTL as i64 => ret,
            in("rdi") code,
            in("rsi") arg,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// Whether [`panel`] reads `ty`.
pub fn supports(ty: QType) -> bool {
    matches!(ty, QType::Q4_0 | QType::Q4_1 | QType::Q8_0)
}

/// The tile configuration (palette 1): `tmm0` = C (`m` rows × 64 bytes), `tmm1` = A (`m` rows ×
/// 32 bytes), `tmm2` = B (8 rows × 64 bytes).
#[repr(C, align(64))]
struct TileConfig([u8; 64]);

impl TileConfig {
    fn new(m: usize) -> Self {
        let mut c = [0u8; 64];
        c[0] = 1;
        let mut set = |t: usize, rows: usize, bytes: u16| {
            c[16 + 2 * t..18 + 2 * t].copy_from_slice(&bytes.to_le_bytes());
            c[48 + t] = rows as u8;
        };
        set(0, m, 64);
        set(1, m, QK as u16);
        set(2, QK / 4, 64);
        Self(c)
    }
}

/// 64-byte aligned scratch of one panel: the B tile and the stored C tile.
#[repr(C, align(64))]
struct Scratch {
    b: [u8; 512],
    c: [i32; TOKENS * ROWS],
}

/// `out[t · 16 + j] = row_j · acts[t0 + t]` for `t < m`, `j < 16`: `rows` holds 16 weight rows
/// of `ty`, `rb` bytes each, with `acts.cols` values per row.
///
/// # Panics
/// If [`available`] is false, `ty` is not one [`supports`] reads, `m` is 0 or above
/// [`TOKENS`], the rows or activations are shorter than the shapes say, or a row's bytes
/// exceed what 32-bit gather offsets reach (internal invariants of the executor).
pub fn panel(
    ty: QType,
    rows: &[u8],
    rb: usize,
    acts: &QActs,
    t0: usize,
    m: usize,
    out: &mut [f32; TOKENS * ROWS],
) {
    assert!(available(), "AMX panels need AMX-INT8 and the tile state");
    assert!(supports(ty), "no AMX panel for {ty:?}");
    assert!(
        (1..=TOKENS).contains(&m) && t0 + m <= acts.rows,
        "panel out of range"
    );
    let nb = acts.blocks();
    assert!(
        rb >= nb * ty.block_bytes() && rows.len() >= ROWS * rb,
        "weight rows too short"
    );
    assert!(
        ROWS * rb < i32::MAX as usize,
        "rows too long for gather offsets"
    );
    assert!(acts.qs.len() >= acts.rows * acts.cols && acts.d.len() >= acts.rows * nb);
    assert!(acts.s.len() >= acts.rows * nb);
    // SAFETY: the CPU has AMX-TILE/INT8 (tile state granted) and AVX-512 F/BW/VL, F16C;
    // the asserts above bound every read: the gathers reach bytes `off .. off + 4` of blocks
    // `0..nb` of rows `0..16`, the A tile rows `t0..t0 + m` of `acts.qs`.
    unsafe { panel_amx(ty, rows.as_ptr(), rb, acts, t0, m, out) }
}

#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl")]
unsafe fn panel_amx(
    ty: QType,
    rows: *const u8,
    rb: usize,
    acts: &QActs,
    t0: usize,
    m: usize,
    out: &mut [f32; TOKENS * ROWS],
) {
    let nb = acts.blocks();
    let bb = ty.block_bytes();
    let cols = acts.cols;
    let cfg = TileConfig::new(m);
    let mut scratch = Scratch {
        b: [0; 512],
        c: [0; TOKENS * ROWS],
    };
    let mut acc = [_mm512_setzero_ps(); TOKENS];
    // Byte offset of row j's block 0, per lane.
    let lanes = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32(rb as i32),
    );
    let low = _mm512_set1_epi8(0x0F);
    // SAFETY (whole body): as `panel` checked; the tile registers are used only here, between
    // the configuration and the release.
    unsafe {
        asm!("ldtilecfg [{0}]", in(reg) cfg.0.as_ptr(), options(nostack, readonly));
        for g in 0..nb {
            let blk = rows.add(g * bb);
            // Scales of the 16 rows' block g: d in the low half of each lane's first 4 bytes,
            // Q4_1's m in the high half.
            let head = _mm512_i32gather_epi32::<1>(lanes, blk.cast());
            let dw = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(head));
            let b = scratch.b.as_mut_ptr();
            match ty {
                QType::Q8_0 => {
                    // Values 0..16 and 16..32 of each row: two transposes of 16 × 4 words.
                    for half in 0..2 {
                        let w = words16(blk.add(2 + 16 * half), rb);
                        for (r, v) in w.into_iter().enumerate() {
                            _mm512_store_si512(b.add(64 * (4 * half + r)).cast(), v);
                        }
                    }
                }
                _ => {
                    let off = if ty == QType::Q4_1 { 4 } else { 2 };
                    let w = words16(blk.add(off), rb);
                    for (r, v) in w.into_iter().enumerate() {
                        let lo = _mm512_and_si512(v, low);
                        let hi = _mm512_and_si512(_mm512_srli_epi32::<4>(v), low);
                        _mm512_store_si512(b.add(64 * r).cast(), lo);
                        _mm512_store_si512(b.add(64 * (r + 4)).cast(), hi);
                    }
                }
            }
            let a = acts.qs.as_ptr().add(t0 * cols + g * QK);
            asm!(
                "tilezero tmm0",
                "tileloadd tmm1, [{a} + {sa}*1]",
                "tileloadd tmm2, [{b} + {sb}*1]",
                a = in(reg) a,
                sa = in(reg) cols,
                b = in(reg) b,
                sb = in(reg) 64usize,
                options(nostack, readonly),
            );
            if ty == QType::Q8_0 {
                asm!("tdpbssd tmm0, tmm1, tmm2", options(nostack, nomem));
            } else {
                asm!("tdpbsud tmm0, tmm1, tmm2", options(nostack, nomem));
            }
            asm!(
                "tilestored [{c} + {sc}*1], tmm0",
                c = in(reg) scratch.c.as_mut_ptr(),
                sc = in(reg) 64usize,
                options(nostack),
            );
            let c = scratch.c.as_ptr();
            match ty {
                QType::Q4_1 => {
                    let mw = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32::<16>(head)));
                    for t in 0..m {
                        let sums = _mm512_cvtepi32_ps(_mm512_load_si512(c.add(16 * t).cast()));
                        let dx = *acts.d.get_unchecked((t0 + t) * nb + g);
                        let sx = *acts.s.get_unchecked((t0 + t) * nb + g);
                        let scaled = _mm512_mul_ps(dw, _mm512_set1_ps(dx));
                        acc[t] = _mm512_fmadd_ps(sums, scaled, acc[t]);
                        acc[t] = _mm512_fmadd_ps(_mm512_set1_ps(sx), mw, acc[t]);
                    }
                }
                QType::Q4_0 => {
                    // w = d·(u − 8): Σ w·x = d·(d_x·Σuq − 8·s_x).
                    for t in 0..m {
                        let sums = _mm512_cvtepi32_ps(_mm512_load_si512(c.add(16 * t).cast()));
                        let dx = *acts.d.get_unchecked((t0 + t) * nb + g);
                        let sx = *acts.s.get_unchecked((t0 + t) * nb + g);
                        let inner =
                            _mm512_fmsub_ps(sums, _mm512_set1_ps(dx), _mm512_set1_ps(8.0 * sx));
                        acc[t] = _mm512_fmadd_ps(inner, dw, acc[t]);
                    }
                }
                _ => {
                    for t in 0..m {
                        let sums = _mm512_cvtepi32_ps(_mm512_load_si512(c.add(16 * t).cast()));
                        let dx = *acts.d.get_unchecked((t0 + t) * nb + g);
                        let scaled = _mm512_mul_ps(dw, _mm512_set1_ps(dx));
                        acc[t] = _mm512_fmadd_ps(sums, scaled, acc[t]);
                    }
                }
            }
        }
        asm!("tilerelease", options(nostack, nomem));
        for t in 0..m {
            _mm512_storeu_ps(out.as_mut_ptr().add(16 * t), acc[t]);
        }
    }
}

/// The 16 bytes at `p + j·rb` for rows `j < 16`, transposed by 4-byte words: register `r`
/// holds word `r` of rows 0..16 in lanes 0..16 (the tile unit's VNNI row order). Sixteen
/// 128-bit loads and two rounds of in-lane unpacks, where four 16-lane gathers cost several
/// times the micro-operations.
///
/// # Safety
/// AVX-512 F present; the 16 bytes at each `p + j·rb` readable.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn words16(p: *const u8, rb: usize) -> [__m512i; 4] {
    // SAFETY: as the caller guarantees.
    unsafe {
        let row = |j: usize| _mm_loadu_si128(p.add(j * rb).cast());
        // a_i: rows i, i + 4, i + 8, i + 12 in its four 128-bit lanes.
        let a: [__m512i; 4] = std::array::from_fn(|i| {
            let z = _mm512_castsi128_si512(row(i));
            let z = _mm512_inserti32x4::<1>(z, row(i + 4));
            let z = _mm512_inserti32x4::<2>(z, row(i + 8));
            _mm512_inserti32x4::<3>(z, row(i + 12))
        });
        // A 4 × 4 word transpose inside each lane: lane L, word i of register r = word r of
        // row 4L + i.
        let t0 = _mm512_unpacklo_epi32(a[0], a[1]);
        let t1 = _mm512_unpackhi_epi32(a[0], a[1]);
        let t2 = _mm512_unpacklo_epi32(a[2], a[3]);
        let t3 = _mm512_unpackhi_epi32(a[2], a[3]);
        [
            _mm512_unpacklo_epi64(t0, t2),
            _mm512_unpackhi_epi64(t0, t2),
            _mm512_unpacklo_epi64(t1, t3),
            _mm512_unpackhi_epi64(t1, t3),
        ]
    }
}
