//! The selection hot loop does not allocate: once a selector's scratch buffers and the caller's
//! `ExpertChoice` have grown to `E`, `select` makes no heap allocation (counted by a global
//! allocator, per thread).
#![allow(unsafe_code)] // a counting global allocator needs `unsafe impl GlobalAlloc`

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bh_moe::{BhConfig, BhSelector, GaussianKde, KdeOptions, TopP, synthetic};
use routing_core::expert::{ExpertChoice, ExpertSelector, TopK};

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

struct Counting;

fn count() {
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller upholds `alloc`'s contract, passed through as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` through this allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: as `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: `ptr` came from `System` through this allocator; the caller upholds the rest.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn selection_does_not_allocate() {
    const E: usize = 64;
    let layers = 4;
    let tables = (0..layers)
        .map(|l| {
            let calib: Vec<f64> = synthetic::router_logits(40, E, l as u64)
                .iter()
                .map(|&z| f64::from(z))
                .collect();
            let options = KdeOptions {
                max_samples: Some(1_000),
                ..KdeOptions::default()
            };
            GaussianKde::fit_with(&calib, &options)
                .unwrap()
                .tabulate(32)
                .unwrap()
        })
        .collect();
    let tokens = synthetic::router_logits(500, E, 99);
    let mut selectors: Vec<Box<dyn ExpertSelector>> = vec![
        Box::new(TopK::new(8, false).unwrap()),
        Box::new(BhSelector::new(tables, BhConfig::new(0.4, 1, E).unwrap()).unwrap()),
        Box::new(TopP::new(0.9, Some(32)).unwrap()),
    ];
    // The counter works: one allocation is seen.
    let before = allocations();
    drop(std::hint::black_box(Vec::<u8>::with_capacity(16)));
    assert_eq!(allocations() - before, 1);
    let mut out = ExpertChoice::with_capacity(E);
    for s in &mut selectors {
        // Warm-up: the scratch buffers grow to E, and BH computes each layer's thresholds at
        // the layer's first token.
        for layer in 0..layers {
            s.select(layer, &tokens[..E], &mut out).unwrap();
        }
        let before = allocations();
        let mut selected = 0;
        for (t, z) in tokens.chunks(E).enumerate() {
            s.select(t % layers, z, &mut out).unwrap();
            selected += out.len();
        }
        let made = allocations() - before;
        assert_eq!(
            made,
            0,
            "{}: {made} allocations in 500 selections",
            s.name()
        );
        assert!(selected >= 500);
    }
}
