//! The one source of randomness: seeded ChaCha8 streams, one per purpose.
//!
//! Every random draw in kvsched comes from a [`Prng`] built from a `u64` seed and a named
//! [`Stream`]. Streams are independent (`set_stream`), so adding a consumer of randomness does
//! not shift the draws of the others, and the same seed gives the same bytes on any thread
//! count because no stream is shared between threads.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Named random streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Stream {
    /// Inter-arrival times.
    Arrivals = 1,
    /// Class choice and request lengths.
    Lengths = 2,
    /// Output-length predictions (noise).
    Predictions = 3,
    /// Modulation of arrival rates (bursts).
    Modulation = 4,
    /// Instance generators for experiments.
    Instances = 5,
    /// Policy-internal randomness (randomized schedulers).
    Policy = 6,
}

/// A seeded random stream.
pub type Prng = ChaCha8Rng;

/// The stream `stream` of seed `seed`.
pub fn stream(seed: u64, stream: Stream) -> Prng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream as u64);
    rng
}

/// A sub-seed for replication `index` of a run with seed `seed` (SplitMix64 mixing), so that
/// sweeps derive independent seeds deterministically.
pub fn derive_seed(seed: u64, index: u64) -> u64 {
    let mut z = seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
