//! How one test is cut into exactly additive shares: for runner `i` of `N` (a pod of an
//! Indexed Job, a local worker process) and again for each thread inside it.
//!
//! Everything countable in a scenario — VUs, iterations, arrival slots — is numbered
//! 0, 1, 2, ... over the whole test, and share `i/N` takes the numbers congruent to `i`
//! modulo `N`. This is k6's striped execution segments for equal shares: the N shares
//! add up to exactly the whole at every instant (no rounding drift), every share is
//! spread evenly over time, and a share of a share is again a stripe, so the
//! thread split inside a runner uses the same arithmetic.

use std::fmt;
use std::str::FromStr;

/// Runner `index` of `count`, as written on the command line: `I/N`, 0-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub index: u64,
    pub count: u64,
}

impl Segment {
    pub const WHOLE: Segment = Segment { index: 0, count: 1 };

    pub fn new(index: u64, count: u64) -> Result<Segment, String> {
        if count == 0 {
            return Err("the runner count must be at least 1".into());
        }
        if index >= count {
            return Err(format!(
                "segment index {index} is out of range for {count} runners (0..{})",
                count - 1
            ));
        }
        Ok(Segment { index, count })
    }

    pub fn stripe(self) -> Stripe {
        Stripe {
            offset: self.index,
            stride: self.count,
        }
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Segment {
    type Err = String;
    fn from_str(s: &str) -> Result<Segment, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not a segment: write I/N, e.g. 0/4"))?;
        let index = i
            .trim()
            .parse()
            .map_err(|_| format!("`{s}`: `{i}` is not a runner index"))?;
        let count = n
            .trim()
            .parse()
            .map_err(|_| format!("`{s}`: `{n}` is not a runner count"))?;
        Segment::new(index, count)
    }
}

/// The global numbers `offset, offset + stride, offset + 2·stride, ...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stripe {
    pub offset: u64,
    pub stride: u64,
}

impl Stripe {
    pub const WHOLE: Stripe = Stripe {
        offset: 0,
        stride: 1,
    };

    /// Part `index` of `parts` of this stripe: again a stripe.
    pub fn split(self, index: u64, parts: u64) -> Stripe {
        Stripe {
            offset: self.offset + self.stride * index,
            stride: self.stride * parts,
        }
    }

    /// How many of the global numbers `0..total` belong to this stripe.
    pub fn count_below(self, total: u64) -> u64 {
        if total <= self.offset {
            0
        } else {
            (total - self.offset).div_ceil(self.stride)
        }
    }

    /// The global number of this stripe's `local`-th member.
    pub fn global(self, local: u64) -> u64 {
        self.offset + self.stride * local
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_segments() {
        assert_eq!("1/4".parse::<Segment>(), Ok(Segment { index: 1, count: 4 }));
        assert!("4/4".parse::<Segment>().is_err());
        assert!("0/0".parse::<Segment>().is_err());
        assert!("x/2".parse::<Segment>().is_err());
        assert!("3".parse::<Segment>().is_err());
    }

    proptest! {
        #[test]
        fn shares_add_up_to_the_whole(total in 0u64..100_000, n in 1u64..64, threads in 1u64..9) {
            let mut sum = 0;
            for i in 0..n {
                let seg = Segment::new(i, n).map_err(TestCaseError::fail)?.stripe();
                let mut thread_sum = 0;
                for t in 0..threads {
                    thread_sum += seg.split(t, threads).count_below(total);
                }
                prop_assert_eq!(thread_sum, seg.count_below(total));
                sum += seg.count_below(total);
            }
            prop_assert_eq!(sum, total);
        }

        #[test]
        fn every_number_belongs_to_exactly_one_share(k in 0u64..1_000_000, n in 1u64..64, threads in 1u64..9) {
            let owners: Vec<(u64, u64)> = (0..n)
                .flat_map(|i| (0..threads).map(move |t| (i, t)))
                .filter(|&(i, t)| {
                    let s = Stripe { offset: i, stride: n }.split(t, threads);
                    k >= s.offset && (k - s.offset).is_multiple_of(s.stride)
                })
                .collect();
            prop_assert_eq!(owners.len(), 1);
        }
    }
}
