//! Units of the model as newtypes, so that tokens, blocks, bytes and time never mix.
//!
//! Simulated time is an integer number of nanoseconds ([`Nanos`]).
//! Floating point appears only in the step-time coefficients (seconds, converted once to
//! integer femtoseconds, see [`crate::step_time`]) and in the fluid math.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::{Add, AddAssign, Sub, SubAssign};

macro_rules! unit {
    ($(#[$doc:meta])* $name:ident, $suffix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[derive(Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl $name {
            /// The zero value.
            pub const ZERO: Self = Self(0);
            /// The raw integer.
            #[inline]
            pub const fn get(self) -> u64 {
                self.0
            }
            /// Subtraction that returns `None` instead of wrapping.
            #[inline]
            pub fn checked_sub(self, rhs: Self) -> Option<Self> {
                self.0.checked_sub(rhs.0).map(Self)
            }
            /// Addition that returns `None` on overflow.
            #[inline]
            pub fn checked_add(self, rhs: Self) -> Option<Self> {
                self.0.checked_add(rhs.0).map(Self)
            }
            /// Subtraction clamped at zero.
            #[inline]
            pub fn saturating_sub(self, rhs: Self) -> Self {
                Self(self.0.saturating_sub(rhs.0))
            }
        }
        impl Add for $name {
            type Output = Self;
            #[inline]
            fn add(self, rhs: Self) -> Self {
                Self(self.0.checked_add(rhs.0).expect(concat!(stringify!($name), " overflow")))
            }
        }
        impl AddAssign for $name {
            #[inline]
            fn add_assign(&mut self, rhs: Self) {
                *self = *self + rhs;
            }
        }
        impl Sub for $name {
            type Output = Self;
            #[inline]
            fn sub(self, rhs: Self) -> Self {
                Self(self.0.checked_sub(rhs.0).expect(concat!(stringify!($name), " underflow")))
            }
        }
        impl SubAssign for $name {
            #[inline]
            fn sub_assign(&mut self, rhs: Self) {
                *self = *self - rhs;
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}{}", self.0, $suffix)
            }
        }
        impl std::iter::Sum for $name {
            fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
                iter.fold(Self::ZERO, |a, b| a + b)
            }
        }
    };
}

unit!(
    /// A count of KV-cache tokens (one token's keys and values over all layers).
    Tokens,
    " tok"
);
unit!(
    /// A count of paged KV blocks of `block_size_tokens` tokens each.
    KvBlocks,
    " blk"
);
unit!(
    /// A count of bytes.
    Bytes,
    " B"
);
unit!(
    /// Simulated time, or a duration, in integer nanoseconds.
    Nanos,
    " ns"
);

impl KvBlocks {
    /// The number of blocks needed to hold `tokens`, rounding up (a partly filled block is held
    /// whole).
    #[inline]
    pub fn from_tokens_div_ceil(tokens: Tokens, block_size_tokens: u64) -> KvBlocks {
        assert!(block_size_tokens > 0, "block size must be positive");
        KvBlocks(tokens.0.div_ceil(block_size_tokens))
    }
    /// The number of whole blocks that fit in `tokens`, rounding down.
    #[inline]
    pub fn from_tokens_div_floor(tokens: Tokens, block_size_tokens: u64) -> KvBlocks {
        assert!(block_size_tokens > 0, "block size must be positive");
        KvBlocks(tokens.0 / block_size_tokens)
    }
    /// The tokens these blocks can hold.
    #[inline]
    pub fn to_tokens(self, block_size_tokens: u64) -> Tokens {
        Tokens(self.0.checked_mul(block_size_tokens).expect("KvBlocks to tokens overflow"))
    }
}

impl Bytes {
    /// Bytes of KV cache per token for a transformer: `2 * layers * kv_heads * head_dim *
    /// bytes_per_element` (keys and values, every layer).
    pub fn kv_per_token(
        layers: u64,
        kv_heads: u64,
        head_dim: u64,
        bytes_per_element: u64,
    ) -> Bytes {
        Bytes(2 * layers * kv_heads * head_dim * bytes_per_element)
    }
}

/// Nanoseconds in one second.
pub const NANOS_PER_S: u64 = 1_000_000_000;

/// The end of simulated time: 2^62 ns (about 146 years). Every time and duration of the model
/// lies in `[0, MAX_TIME_NS]`; an arrival, a step or an idle past it is an error, never a
/// wrapped or panicking addition.
pub const MAX_TIME_NS: u64 = 1 << 62;

impl Nanos {
    /// Converts seconds to nanoseconds, rounding to nearest. Negative or non-finite input, or a
    /// time past [`MAX_TIME_NS`], is an error, returned as `None`.
    pub fn from_secs_f64(secs: f64) -> Option<Nanos> {
        let ns = secs * NANOS_PER_S as f64;
        if !ns.is_finite() || ns < 0.0 || ns > MAX_TIME_NS as f64 {
            return None;
        }
        Some(Nanos(ns.round() as u64))
    }
    /// This duration in seconds (lossy above 2^53 ns, about 104 days).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / NANOS_PER_S as f64
    }
}
