//! A key/value cache for autoregressive decoding that can append, roll back and batch.
//!
//! Per layer it holds keys and values shaped `[batch, kv_heads, positions, head_dim]`
//! (already rotated by RoPE). Sequences of different lengths share a batch by **left
//! padding**: sequence `b` starts at slot `pad[b]`, slots before that are masked out of
//! attention and its token positions count from its first real token.

use burn::tensor::Tensor;

/// The cache of one decoding session.
#[derive(Debug, Clone)]
pub struct KvCache {
    layers: Vec<Option<(Tensor<4>, Tensor<4>)>>,
    len: usize,
    pad: Vec<usize>,
    offset: usize,
}

impl KvCache {
    /// An empty cache for `n_layers` layers and `batch` sequences, all starting unpadded.
    pub fn new(n_layers: usize, batch: usize) -> Self {
        Self {
            layers: vec![None; n_layers],
            len: 0,
            pad: vec![0; batch],
            offset: 0,
        }
    }

    /// Cached positions (slots), padding included.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Batch size.
    pub fn batch(&self) -> usize {
        self.pad.len()
    }

    /// Position of the first cache slot (0 unless set): for a sequence that continues a
    /// context whose cache was dropped, or to run positions far into the context window.
    pub fn position_offset(&self) -> usize {
        self.offset
    }

    /// Sets [`Self::position_offset`]; only allowed on an empty cache.
    pub fn set_position_offset(&mut self, offset: usize) {
        debug_assert!(
            self.is_empty(),
            "the offset is fixed once tokens are cached"
        );
        self.offset = offset;
    }

    /// Left padding of each sequence (slots before its first real token).
    pub fn padding(&self) -> &[usize] {
        &self.pad
    }

    /// Sets the left padding; only allowed on an empty cache.
    pub fn set_padding(&mut self, pad: Vec<usize>) {
        debug_assert!(self.is_empty(), "padding is fixed once tokens are cached");
        self.pad = pad;
    }

    /// Appends this step's keys and values for `layer` and returns the whole cached
    /// `(keys, values)` of that layer. The caller advances the length with [`KvCache::advance`]
    /// once every layer has appended.
    pub fn append(&mut self, layer: usize, k: Tensor<4>, v: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let (k, v) = match self.layers[layer].take() {
            None => (k, v),
            Some((pk, pv)) => (Tensor::cat(vec![pk, k], 2), Tensor::cat(vec![pv, v], 2)),
        };
        self.layers[layer] = Some((k.clone(), v.clone()));
        (k, v)
    }

    /// Records that `n` more slots were appended to every layer.
    pub fn advance(&mut self, n: usize) {
        self.len += n;
    }

    /// Rolls back to the first `len` slots (e.g. to discard rejected speculative tokens).
    /// A `len` at or beyond the current length is a no-op.
    pub fn truncate(&mut self, len: usize) {
        if len >= self.len {
            return;
        }
        for entry in self.layers.iter_mut() {
            if let Some((k, v)) = entry.take()
                && len > 0
            {
                *entry = Some((k.slice_dim(2, 0..len), v.slice_dim(2, 0..len)));
            }
        }
        self.len = len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::tensor_io::{read_f32, upload};
    use burn::tensor::Device;

    #[test]
    fn append_truncate_and_reappend() {
        let d = Device::flex();
        let mut c = KvCache::new(1, 1);
        let step = |x: f32| upload(vec![x; 4], [1, 1, 2, 2], &d);
        c.append(0, step(1.0), step(-1.0));
        c.advance(2);
        let (k, _) = c.append(0, step(2.0), step(-2.0));
        c.advance(2);
        assert_eq!(k.dims(), [1, 1, 4, 2]);
        c.truncate(3);
        assert_eq!(c.len(), 3);
        let (k, v) = c.append(0, step(5.0), step(-5.0));
        c.advance(2);
        assert_eq!(
            read_f32(k).unwrap(),
            vec![1., 1., 1., 1., 2., 2., 5., 5., 5., 5.]
        );
        assert_eq!(read_f32(v).unwrap()[9], -5.0);
        c.truncate(0);
        assert!(c.is_empty());
    }
}
