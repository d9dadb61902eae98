//! What a leftover costs, in numbers a reader can recompute: counts of what it holds (kube-proxy
//! rules, DNS records, load balancers, bytes of storage) times stated prices. Money is summed in
//! whole cents so that the total is exactly the sum of the rows.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Hours in a billing month, as cloud price lists use: 365 × 24 / 12.
pub const HOURS_PER_MONTH: f64 = 730.0;

/// Default hourly price of a cloud load balancer (USD), roughly the base hourly charge of an
/// AWS NLB/CLB, a GCP forwarding rule or an Azure standard LB rule before traffic charges.
pub const DEFAULT_LB_HOURLY_USD: f64 = 0.025;

/// Default price of block storage per GiB-month (USD), e.g. AWS gp2 or GCP pd-balanced.
pub const DEFAULT_STORAGE_GIB_MONTH_USD: f64 = 0.10;

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// What one leftover holds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Holds {
    /// iptables rules kube-proxy keeps for it on each node.
    pub kube_proxy_rules_per_node: u64,
    /// A/AAAA records cluster DNS serves for it.
    pub dns_a_records: u64,
    /// SRV records cluster DNS serves for it.
    pub dns_srv_records: u64,
    /// Provisioned cloud load balancers.
    pub load_balancers: u64,
    /// Bytes of provisioned storage.
    pub storage_bytes: u64,
}

/// Prices the audit applies.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Prices {
    /// USD per load balancer-hour.
    pub lb_hourly_usd: f64,
    /// USD per GiB-month of storage.
    pub storage_gib_month_usd: f64,
}

impl Default for Prices {
    fn default() -> Self {
        Self {
            lb_hourly_usd: DEFAULT_LB_HOURLY_USD,
            storage_gib_month_usd: DEFAULT_STORAGE_GIB_MONTH_USD,
        }
    }
}

/// The cost of one finding.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Cost {
    /// Monthly USD: load balancers plus storage, rounded to cents.
    pub monthly_usd: f64,
    /// Cloud load balancers held.
    pub load_balancers: u64,
    /// GiB of storage held.
    pub storage_gib: f64,
    /// kube-proxy iptables rules across all nodes (per-node rules × nodes).
    pub kube_proxy_rules: u64,
    /// DNS records (A/AAAA and SRV).
    pub dns_records: u64,
    /// How each figure was computed, one line each.
    pub breakdown: Vec<String>,
}

impl Cost {
    /// Monthly cost in whole cents.
    pub fn cents(&self) -> i64 {
        (self.monthly_usd * 100.0).round() as i64
    }
}

/// A USD amount in whole cents.
fn cents(usd: f64) -> i64 {
    (usd * 100.0).round() as i64
}

/// Prices what `holds` keeps alive on a cluster of `nodes` nodes.
pub fn price(holds: &Holds, prices: &Prices, nodes: u64) -> Cost {
    let mut breakdown = Vec::new();
    let lb_usd = holds.load_balancers as f64 * prices.lb_hourly_usd * HOURS_PER_MONTH;
    if holds.load_balancers > 0 {
        breakdown.push(format!(
            "{} load balancer(s) × {} USD/h × {HOURS_PER_MONTH} h = {:.2} USD/month",
            holds.load_balancers, prices.lb_hourly_usd, lb_usd
        ));
    }
    let gib = holds.storage_bytes as f64 / GIB;
    let storage_usd = gib * prices.storage_gib_month_usd;
    if holds.storage_bytes > 0 {
        breakdown.push(format!(
            "{gib:.2} GiB × {} USD/GiB-month = {storage_usd:.2} USD/month",
            prices.storage_gib_month_usd
        ));
    }
    let rules = holds.kube_proxy_rules_per_node * nodes;
    if rules > 0 {
        breakdown.push(format!(
            "{} kube-proxy REJECT rule(s) per node × {nodes} node(s) = {rules} rules",
            holds.kube_proxy_rules_per_node
        ));
    }
    let dns = holds.dns_a_records + holds.dns_srv_records;
    if dns > 0 {
        breakdown.push(format!(
            "{} A/AAAA + {} SRV DNS record(s)",
            holds.dns_a_records, holds.dns_srv_records
        ));
    }
    Cost {
        monthly_usd: (cents(lb_usd) + cents(storage_usd)) as f64 / 100.0,
        load_balancers: holds.load_balancers,
        storage_gib: (gib * 100.0).round() / 100.0,
        kube_proxy_rules: rules,
        dns_records: dns,
        breakdown,
    }
}

/// Parses a Kubernetes quantity (`10Gi`, `500M`, `1.5Ti`, `1e9`) into bytes.
pub fn parse_bytes(quantity: &str) -> Option<u64> {
    const SUFFIXES: [(&str, f64); 13] = [
        ("Ki", 1024.0),
        ("Mi", 1_048_576.0),
        ("Gi", 1_073_741_824.0),
        ("Ti", 1_099_511_627_776.0),
        ("Pi", 1_125_899_906_842_624.0),
        ("Ei", 1_152_921_504_606_846_976.0),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
        ("m", 1e-3),
    ];
    let q = quantity.trim();
    let (number, multiplier) = SUFFIXES
        .iter()
        .find_map(|(suffix, m)| Some((q.strip_suffix(suffix)?, *m)))
        .unwrap_or((q, 1.0));
    let value: f64 = number.parse().ok()?;
    let bytes = value * multiplier;
    (bytes.is_finite() && bytes >= 0.0).then(|| bytes.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn quantities_parse_to_bytes() {
        let cases = [
            ("10Gi", Some(10 * 1024 * 1024 * 1024)),
            ("512Mi", Some(512 * 1024 * 1024)),
            ("1.5Ti", Some(1_649_267_441_664)),
            ("5G", Some(5_000_000_000)),
            ("1e3", Some(1000)),
            ("100", Some(100)),
            ("10Zi", None),
            ("Gi", None),
        ];
        for (q, expected) in cases {
            assert_eq!(parse_bytes(q), expected, "{q}");
        }
    }

    #[test]
    fn a_load_balancer_costs_hourly_times_730() {
        let holds = Holds {
            load_balancers: 1,
            kube_proxy_rules_per_node: 3,
            dns_a_records: 1,
            dns_srv_records: 1,
            ..Holds::default()
        };
        let cost = price(&holds, &Prices::default(), 4);
        assert_eq!(cost.monthly_usd, 18.25);
        assert_eq!(cost.kube_proxy_rules, 12);
        assert_eq!(cost.dns_records, 2);
        assert_eq!(
            cost.breakdown[0],
            "1 load balancer(s) × 0.025 USD/h × 730 h = 18.25 USD/month"
        );
    }

    #[test]
    fn storage_costs_gib_times_price() {
        let holds = Holds {
            storage_bytes: 20 * 1024 * 1024 * 1024,
            ..Holds::default()
        };
        let prices = Prices {
            lb_hourly_usd: 0.0,
            storage_gib_month_usd: 0.08,
        };
        let cost = price(&holds, &prices, 1);
        assert_eq!((cost.monthly_usd, cost.storage_gib), (1.6, 20.0));
    }

    proptest! {
        #[test]
        fn monthly_cost_is_the_sum_of_its_rounded_parts(lbs in 0u64..50, gib in 0u64..10_000, hourly in 0.0f64..1.0, per_gib in 0.0f64..1.0) {
            let holds = Holds { load_balancers: lbs, storage_bytes: gib * 1024 * 1024 * 1024, ..Holds::default() };
            let prices = Prices { lb_hourly_usd: hourly, storage_gib_month_usd: per_gib };
            let cost = price(&holds, &prices, 1);
            let expected = cents(lbs as f64 * hourly * HOURS_PER_MONTH) + cents(gib as f64 * per_gib);
            prop_assert_eq!(cost.cents(), expected);
        }
    }
}
