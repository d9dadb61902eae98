//! Joins per-second metrics from several concurrent sources (worker threads, runner
//! processes, pods): a second is complete once every source still running has
//! reported it or a later one, so live views and timelines never show half a second.

use std::collections::BTreeMap;

use super::Metrics;

pub struct SecondJoin {
    pending: BTreeMap<u64, Metrics>,
    seen: Vec<Option<u64>>,
    ended: Vec<bool>,
}

impl SecondJoin {
    pub fn new(sources: usize) -> SecondJoin {
        SecondJoin {
            pending: BTreeMap::new(),
            seen: vec![None; sources],
            ended: vec![false; sources],
        }
    }

    /// Adds `source`'s metrics for `second` (sources are concurrent: counts and gauges add).
    pub fn add(&mut self, source: usize, second: u64, m: &Metrics) {
        self.pending.entry(second).or_default().add_concurrent(m);
        if let Some(seen) = self.seen.get_mut(source) {
            *seen = Some(seen.map_or(second, |s| s.max(second)));
        }
    }

    /// `source` will report no more.
    pub fn end(&mut self, source: usize) {
        if let Some(e) = self.ended.get_mut(source) {
            *e = true;
        }
    }

    /// Takes the seconds that are complete, in order.
    pub fn complete(&mut self) -> Vec<(u64, Metrics)> {
        let below = self
            .seen
            .iter()
            .zip(&self.ended)
            .filter(|(_, ended)| !**ended)
            .map(|(seen, _)| seen.map_or(0, |s| s + 1))
            .min()
            .unwrap_or(u64::MAX);
        let mut out = Vec::new();
        while let Some(entry) = self.pending.first_entry() {
            if *entry.key() >= below {
                break;
            }
            out.push(entry.remove_entry());
        }
        out
    }

    /// Everything still pending, complete or not (at the very end).
    pub fn rest(&mut self) -> Vec<(u64, Metrics)> {
        std::mem::take(&mut self.pending).into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(requests: u64) -> Metrics {
        Metrics {
            requests,
            ..Metrics::default()
        }
    }

    #[test]
    fn a_second_completes_when_every_live_source_passed_it() {
        let mut j = SecondJoin::new(2);
        j.add(0, 0, &m(1));
        assert!(
            j.complete().is_empty(),
            "source 1 has not reported second 0"
        );
        j.add(1, 0, &m(2));
        let done = j.complete();
        assert_eq!(
            done.iter()
                .map(|(s, x)| (*s, x.requests))
                .collect::<Vec<_>>(),
            vec![(0, 3)]
        );
        j.add(0, 1, &m(5));
        j.end(1);
        assert_eq!(
            j.complete()
                .iter()
                .map(|(s, x)| (*s, x.requests))
                .collect::<Vec<_>>(),
            vec![(1, 5)]
        );
        // A source reports each second once, whole: reporting it completes it.
        j.add(0, 2, &m(1));
        j.add(0, 2, &m(1));
        assert_eq!(
            j.rest()
                .iter()
                .map(|(s, x)| (*s, x.requests))
                .collect::<Vec<_>>(),
            vec![(2, 2)]
        );
        assert!(j.complete().is_empty());
    }
}
