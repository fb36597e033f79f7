//! Which leases a worker takes in one cycle: free and expired leases first, up to an even share;
//! then, only when none are free, at most `max_steal` from the busiest worker — and only when
//! that worker is above the even share or this one is at least two below it, so a 3/3/2 split
//! stays put instead of ping-ponging.

use std::collections::{BTreeMap, BTreeSet};

use super::lease::Lease;

/// A lease-taking decision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TakePlan {
    /// Free or expired leases to take.
    pub take: Vec<String>,
    /// Live leases of a busier worker to steal.
    pub steal: Vec<String>,
}

/// A lease is ready when it is not finished and every parent it names is finished or gone.
pub fn is_ready(lease: &Lease, by_key: &BTreeMap<&str, &Lease>) -> bool {
    !lease.checkpoint.is_shard_end()
        && lease.parents.iter().all(|parent| {
            by_key
                .get(parent.as_str())
                .is_none_or(|p| p.checkpoint.is_shard_end())
        })
}

/// Plans one cycle for worker `me`. `expired` holds leases whose owner stopped renewing them;
/// `order` shuffles candidates so workers do not all race for the same lease.
pub fn plan_takes(
    leases: &[Lease],
    me: &str,
    expired: &BTreeSet<String>,
    max_leases_per_worker: usize,
    max_steal: usize,
    order: impl Fn(&mut Vec<String>),
) -> TakePlan {
    let by_key: BTreeMap<&str, &Lease> = leases.iter().map(|l| (l.key.as_str(), l)).collect();
    let ready: Vec<&Lease> = leases.iter().filter(|l| is_ready(l, &by_key)).collect();
    if ready.is_empty() {
        return TakePlan::default();
    }
    let is_free = |lease: &Lease| lease.owner.is_none() || expired.contains(&lease.key);
    let mut owned: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    owned.entry(me).or_default();
    for lease in &ready {
        if let Some(owner) = lease.owner.as_deref().filter(|_| !is_free(lease)) {
            owned.entry(owner).or_default().push(&lease.key);
        }
    }
    let workers = owned.len();
    let mut target = ready.len().div_ceil(workers);
    if max_leases_per_worker > 0 {
        target = target.min(max_leases_per_worker);
    }
    let mine = owned.get(me).map_or(0, Vec::len);
    if mine >= target {
        return TakePlan::default();
    }
    let need = target - mine;
    let mut free: Vec<String> = ready
        .iter()
        .filter(|l| is_free(l) && l.owner.as_deref() != Some(me))
        .map(|l| l.key.clone())
        .collect();
    if !free.is_empty() {
        order(&mut free);
        free.truncate(need);
        return TakePlan {
            take: free,
            steal: Vec::new(),
        };
    }
    let Some((_, busiest)) = owned
        .iter()
        .filter(|(worker, _)| **worker != me)
        .max_by_key(|(worker, keys)| (keys.len(), std::cmp::Reverse(**worker)))
    else {
        return TakePlan::default();
    };
    let above = busiest.len().saturating_sub(target);
    let steal = if above > 0 {
        above.min(need).min(max_steal)
    } else if busiest.len() == target && need >= 2 {
        1.min(max_steal)
    } else {
        0
    };
    let mut victims: Vec<String> = busiest.iter().map(|k| (*k).to_owned()).collect();
    order(&mut victims);
    victims.truncate(steal);
    TakePlan {
        take: Vec::new(),
        steal: victims,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::kinesis::lease::LeaseCheckpoint;

    /// Leases `s0, s1, …` owned by the workers named by each character (`-`: free).
    fn leases(owners: &str) -> Vec<Lease> {
        owners
            .chars()
            .enumerate()
            .map(|(i, owner)| {
                let mut lease =
                    Lease::new(&format!("s{i}"), LeaseCheckpoint::TrimHorizon, vec![], None);
                lease.owner = (owner != '-').then(|| owner.to_string());
                lease
            })
            .collect()
    }

    fn plan(all: &[Lease], me: &str, expired: &[&str]) -> TakePlan {
        let expired = expired.iter().map(|s| s.to_string()).collect();
        plan_takes(all, me, &expired, 0, 1, |_| {})
    }

    #[test]
    fn a_first_worker_takes_everything_free() {
        let all = leases("--------");
        assert_eq!(plan(&all, "a", &[]).take.len(), 8);
    }

    #[test]
    fn expired_leases_are_taken_up_to_the_even_share() {
        let all = leases("aaabbbcc");
        // c died: a holds 3 of its even share of 4 (8 leases / 2 live workers).
        let plan = plan(&all, "a", &["s6", "s7"]);
        assert_eq!(plan.take, ["s6"]);
        assert!(plan.steal.is_empty());
    }

    #[test]
    fn three_three_two_is_stable_and_a_new_worker_steals_one_at_a_time() {
        let all = leases("aaabbbcc");
        for me in ["a", "b", "c"] {
            assert_eq!(plan(&all, me, &[]), TakePlan::default(), "{me}");
        }
        let all = leases("aaaabbbb");
        let plan = plan(&all, "c", &[]);
        assert_eq!(plan.steal.len(), 1);
        assert!(plan.take.is_empty());
    }

    #[test]
    fn children_wait_for_their_parents_and_caps_apply() {
        let mut all = leases("a--");
        all[1].parents = vec!["s0".to_owned()];
        all[2].parents = vec!["s0".to_owned()];
        assert_eq!(plan(&all, "b", &[]), TakePlan::default(), "s0 still open");
        all[0].checkpoint = LeaseCheckpoint::ShardEnd;
        assert_eq!(plan(&all, "b", &[]).take, ["s1", "s2"]);
        let capped = plan_takes(&all, "b", &BTreeSet::new(), 1, 1, |_| {});
        assert_eq!(capped.take, ["s1"]);
    }
}
