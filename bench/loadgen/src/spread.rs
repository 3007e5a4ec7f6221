//! How events spread over bugs, releases, users and tags when they should
//! look like one real, long-lived project (`--issues-spread zipf:N`): bug
//! popularity follows a power law (a few bugs make most of the events, a
//! long tail happens a handful of times), and so do releases (the newest
//! ones get most traffic), users and tenants.

use crate::payload::Rng;
use serde_json::{Value, json};

/// A discrete distribution as its cumulative weights, sampled by binary
/// search.
pub struct Table {
    cdf: Vec<f64>,
}

impl Table {
    /// Rank `k` (0-based) has weight 1 / (k + 1)^exponent.
    pub fn zipf(n: usize, exponent: f64) -> Self {
        let mut total = 0.0;
        let mut cdf: Vec<f64> = (0..n.max(1))
            .map(|k| {
                total += 1.0 / ((k + 1) as f64).powf(exponent);
                total
            })
            .collect();
        for c in &mut cdf {
            *c /= total;
        }
        Self { cdf }
    }

    pub fn len(&self) -> usize {
        self.cdf.len()
    }

    #[cfg(test)]
    pub fn probability(&self, k: usize) -> f64 {
        self.cdf[k] - if k == 0 { 0.0 } else { self.cdf[k - 1] }
    }

    pub fn sample(&self, rng: &mut Rng) -> usize {
        let u = rng.unit();
        self.cdf
            .partition_point(|&c| c <= u)
            .min(self.cdf.len() - 1)
    }
}

/// What `--issues-spread` asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum SpreadSpec {
    /// `--bugs` recurring bugs equally often plus `--unique` new ones.
    Uniform,
    /// Exactly `issues` bugs, popularity ∝ 1 / rank^exponent.
    Zipf { issues: usize, exponent: f64 },
}

pub fn parse_spec(s: &str) -> Result<SpreadSpec, String> {
    if s == "uniform" {
        return Ok(SpreadSpec::Uniform);
    }
    let usage = || format!("{s:?}: expected uniform, zipf:<issues> or zipf:<issues>:<exponent>");
    let rest = s.strip_prefix("zipf:").ok_or_else(usage)?;
    let (issues, exponent) = match rest.split_once(':') {
        Some((n, e)) => (n, e.parse::<f64>().map_err(|_| usage())?),
        None => (rest, 1.0),
    };
    let issues = issues
        .replace('_', "")
        .parse::<usize>()
        .map_err(|_| usage())?;
    if issues == 0 || !(0.0..=4.0).contains(&exponent) {
        return Err(usage());
    }
    Ok(SpreadSpec::Zipf { issues, exponent })
}

pub const RELEASES: usize = 40;
const USERS: usize = 100_000;
const TENANTS: usize = 2_000;
const SERVERS: u64 = 16;
const REGIONS: &[&str] = &[
    "eu-west", "eu-north", "us-east", "us-west", "ap-south", "sa-east",
];

/// Release number `rank` in popularity order: rank 0 is the newest.
pub fn release_name(rank: usize) -> String {
    let number = RELEASES - 1 - rank.min(RELEASES - 1);
    format!("shop@2.{}.{}", number / 10, number % 10)
}

/// The per-event attributes that dashboards filter and facet on.
pub struct Attributes {
    pub user_id: u64,
    pub server: String,
    pub release: String,
    pub environment: &'static str,
    pub tags: Value,
}

pub struct Zipf {
    bugs: Table,
    /// Every `first_every`-th event is the first occurrence of the next bug
    /// in line, so every issue exists once the planned events are sent and
    /// first occurrences are spread over the whole fill, as new bugs keep
    /// appearing in a real project.
    first_every: usize,
    releases: Table,
    users: Table,
    tenants: Table,
}

impl Zipf {
    /// `planned_events`: how many events the run will send (0 when
    /// unknown: then the tail is left to chance).
    pub fn new(issues: usize, exponent: f64, planned_events: usize) -> Self {
        Self {
            bugs: Table::zipf(issues, exponent),
            first_every: if planned_events == 0 {
                0
            } else {
                (planned_events / issues.max(1)).max(1)
            },
            releases: Table::zipf(RELEASES, 1.2),
            users: Table::zipf(USERS, 0.8),
            tenants: Table::zipf(TENANTS, 1.0),
        }
    }

    pub fn issues(&self) -> usize {
        self.bugs.len()
    }

    /// The bug of event number `n` (0-based).
    pub fn bug(&self, rng: &mut Rng, n: usize) -> usize {
        if self.first_every > 0
            && n.is_multiple_of(self.first_every)
            && n / self.first_every < self.issues()
        {
            return n / self.first_every;
        }
        self.bugs.sample(rng)
    }

    pub fn attributes(&self, rng: &mut Rng) -> Attributes {
        let tier = match rng.below(100) {
            0..60 => "free",
            60..90 => "pro",
            _ => "enterprise",
        };
        let environment = match rng.below(100) {
            0..85 => "production",
            85..97 => "staging",
            _ => "development",
        };
        Attributes {
            user_id: self.users.sample(rng) as u64,
            server: format!("web-{}", rng.below(SERVERS)),
            release: release_name(self.releases.sample(rng)),
            environment,
            tags: json!({
                "customer_tier": tier,
                "region": REGIONS[rng.below(REGIONS.len() as u64) as usize],
                "feature_flag": format!("checkout-v{}", rng.below(3)),
                "tenant": format!("tenant-{}", self.tenants.sample(rng)),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse() {
        assert_eq!(parse_spec("uniform"), Ok(SpreadSpec::Uniform));
        assert_eq!(
            parse_spec("zipf:20000"),
            Ok(SpreadSpec::Zipf {
                issues: 20_000,
                exponent: 1.0
            })
        );
        assert_eq!(
            parse_spec("zipf:2_000:1.2"),
            Ok(SpreadSpec::Zipf {
                issues: 2_000,
                exponent: 1.2
            })
        );
        for bad in [
            "zipf",
            "zipf:",
            "zipf:0",
            "zipf:10:x",
            "zipf:10:9",
            "pareto:5",
        ] {
            assert!(parse_spec(bad).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn zipf_table_follows_the_power_law() {
        let t = Table::zipf(1000, 1.0);
        assert!((t.probability(0) / t.probability(1) - 2.0).abs() < 1e-9);
        assert!((t.probability(0) / t.probability(9) - 10.0).abs() < 1e-9);
        let total: f64 = (0..1000).map(|k| t.probability(k)).sum();
        assert!((total - 1.0).abs() < 1e-9);
        let mut rng = Rng::new(3);
        let mut counts = vec![0u32; 1000];
        for _ in 0..200_000 {
            counts[t.sample(&mut rng)] += 1;
        }
        // Rank 0 gets 1/H(1000) ≈ 13.4 % of the samples.
        let share = f64::from(counts[0]) / 200_000.0;
        assert!((share - t.probability(0)).abs() < 0.005, "share {share}");
        assert!(counts[0] > counts[10] && counts[10] > counts[500]);
    }

    #[test]
    fn every_issue_occurs_and_popularity_is_skewed() {
        let zipf = Zipf::new(2_000, 1.0, 50_000);
        let mut rng = Rng::new(1);
        let mut counts = vec![0u32; 2_000];
        for n in 0..50_000 {
            counts[zipf.bug(&mut rng, n)] += 1;
        }
        assert!(counts.iter().all(|&c| c >= 1), "some issue never occurred");
        let mut sorted = counts.clone();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        let top_tenth: u32 = sorted[..200].iter().sum();
        // Under 1/rank over 2,000 ranks the top 10 % hold about 70 %.
        assert!(
            top_tenth > 30_000,
            "top 10 % of issues had {top_tenth} events"
        );
        assert!(sorted[1_999] <= 5, "the tail should be rare");
    }

    #[test]
    fn attributes_spread_like_a_real_project() {
        let zipf = Zipf::new(100, 1.0, 0);
        let mut rng = Rng::new(9);
        let mut newest = 0;
        let mut environments = std::collections::HashSet::new();
        let mut tenants = std::collections::HashSet::new();
        for _ in 0..5_000 {
            let a = zipf.attributes(&mut rng);
            if a.release == release_name(0) {
                newest += 1;
            }
            environments.insert(a.environment);
            tenants.insert(a.tags["tenant"].as_str().unwrap().to_string());
            assert!(a.user_id < USERS as u64);
        }
        assert_eq!(release_name(0), "shop@2.3.9");
        assert!(
            newest > 1_000,
            "newest release had {newest} of 5,000 events"
        );
        assert_eq!(environments.len(), 3);
        assert!(tenants.len() > 300, "{} tenants", tenants.len());
    }
}
