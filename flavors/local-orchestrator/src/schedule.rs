//! Ordering a pipeline's steps: checks, then Kahn's algorithm in waves.

use std::collections::{BTreeMap, BTreeSet};

/// One step as the scheduler sees it: its name and the names of the steps it waits for.
#[derive(Debug, Clone, Copy)]
pub struct StepRef<'a> {
    /// The step's name, unique within the pipeline.
    pub name: &'a str,
    /// The steps that must finish before this one starts.
    pub upstream: &'a [String],
}

/// Orders `steps` into waves: every step of a wave waits only for steps of earlier waves,
/// and the steps of a wave could run in parallel. Each wave is sorted by name, and every
/// step is placed in the earliest wave it can run in (Kahn's algorithm, one wave per
/// round).
///
/// # Errors
/// A message for the user, naming the steps at fault, if a step has an empty name, two
/// steps share a name, a step waits for a step that does not exist, or steps wait for
/// each other in a cycle.
pub fn plan(steps: &[StepRef<'_>]) -> Result<Vec<Vec<String>>, String> {
    check_names(steps)?;
    check_upstream(steps)?;

    // For each step, the distinct steps it still waits for, and the steps waiting for it.
    let mut waiting_for: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut waited_on_by: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for step in steps {
        let upstream: BTreeSet<&str> = step.upstream.iter().map(String::as_str).collect();
        for &before in &upstream {
            waited_on_by.entry(before).or_default().push(step.name);
        }
        waiting_for.insert(step.name, upstream);
    }

    let mut waves = Vec::new();
    let mut ready: Vec<&str> = waiting_for
        .iter()
        .filter(|(_, upstream)| upstream.is_empty())
        .map(|(&name, _)| name)
        .collect();
    while !ready.is_empty() {
        ready.sort_unstable();
        let mut next = Vec::new();
        for &done in &ready {
            waiting_for.remove(done);
            for &after in waited_on_by
                .get(done)
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                if let Some(upstream) = waiting_for.get_mut(after) {
                    upstream.remove(done);
                    if upstream.is_empty() {
                        next.push(after);
                    }
                }
            }
        }
        waves.push(ready.iter().map(|name| name.to_string()).collect());
        ready = next;
    }

    if waiting_for.is_empty() {
        Ok(waves)
    } else {
        Err(describe_cycle(&waiting_for))
    }
}

/// Refuses empty and duplicate step names.
fn check_names(steps: &[StepRef<'_>]) -> Result<(), String> {
    if let Some(position) = steps.iter().position(|step| step.name.trim().is_empty()) {
        return Err(format!(
            "step number {} has an empty name: every step needs a name",
            position + 1
        ));
    }
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for step in steps {
        *counts.entry(step.name).or_default() += 1;
    }
    let duplicates: Vec<String> = counts
        .iter()
        .filter(|&(_, &count)| count > 1)
        .map(|(name, count)| format!("`{name}` ({count} times)"))
        .collect();
    if duplicates.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "duplicate step name{}: {}: every step of a pipeline needs a unique name",
            if duplicates.len() == 1 { "" } else { "s" },
            duplicates.join(", ")
        ))
    }
}

/// Refuses `upstream` entries that name no step of the pipeline.
fn check_upstream(steps: &[StepRef<'_>]) -> Result<(), String> {
    let names: BTreeSet<&str> = steps.iter().map(|step| step.name).collect();
    let unknown: Vec<String> = steps
        .iter()
        .flat_map(|step| {
            step.upstream
                .iter()
                .filter(|before| !names.contains(before.as_str()))
                .map(move |before| {
                    format!("step `{}` waits for unknown step `{before}`", step.name)
                })
        })
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}: every upstream entry must name a step of the same pipeline",
            unknown.join("; ")
        ))
    }
}

/// Explains why the steps left in `waiting_for` can never run: finds one cycle among them
/// and names the steps blocked behind it.
fn describe_cycle(waiting_for: &BTreeMap<&str, BTreeSet<&str>>) -> String {
    // Every step left waits for at least one other step left, so walking "waits for"
    // links from any of them must come back to a step already seen.
    let start = *waiting_for
        .keys()
        .next()
        .expect("describe_cycle is only called with steps left");
    let mut walk = vec![start];
    let cycle = loop {
        let current = *walk.last().expect("the walk starts with one step");
        let before = waiting_for[current]
            .iter()
            .copied()
            .find(|name| waiting_for.contains_key(name))
            .expect("a step left waits for another step left");
        if let Some(seen_at) = walk.iter().position(|&name| name == before) {
            break walk.split_off(seen_at);
        }
        walk.push(before);
    };

    // The walk followed "waits for" links; the run order is the reverse. Start the
    // cycle at its smallest name so the message is stable.
    let mut order: Vec<&str> = cycle.into_iter().rev().collect();
    let smallest = order
        .iter()
        .enumerate()
        .min_by_key(|&(_, name)| *name)
        .map_or(0, |(index, _)| index);
    order.rotate_left(smallest);
    let mut chain = order.join(" -> ");
    chain.push_str(" -> ");
    chain.push_str(order[0]);

    let in_cycle: BTreeSet<&str> = order.iter().copied().collect();
    let blocked: Vec<&str> = waiting_for
        .keys()
        .copied()
        .filter(|name| !in_cycle.contains(name))
        .collect();
    let mut message = format!(
        "steps wait for each other in a cycle: {chain} (each waits for the one before it); \
         remove one of these upstream links"
    );
    if !blocked.is_empty() {
        message.push_str(&format!(
            " (also blocked behind the cycle: {})",
            blocked.join(", ")
        ));
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(spec: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
        spec.iter()
            .map(|(name, upstream)| {
                (
                    name.to_string(),
                    upstream.iter().map(|name| name.to_string()).collect(),
                )
            })
            .collect()
    }

    fn run(spec: &[(&str, &[&str])]) -> Result<Vec<Vec<String>>, String> {
        let owned = steps(spec);
        let refs: Vec<StepRef<'_>> = owned
            .iter()
            .map(|(name, upstream)| StepRef { name, upstream })
            .collect();
        plan(&refs)
    }

    #[test]
    fn empty_pipeline_has_no_waves() {
        assert_eq!(run(&[]).unwrap(), Vec::<Vec<String>>::new());
    }

    #[test]
    fn independent_steps_share_one_sorted_wave() {
        assert_eq!(
            run(&[("b", &[]), ("c", &[]), ("a", &[])]).unwrap(),
            [["a", "b", "c"]]
        );
    }

    #[test]
    fn diamond_makes_three_waves() {
        let waves = run(&[
            ("train", &["load"]),
            ("load", &[]),
            ("evaluate", &["train", "features"]),
            ("features", &["load"]),
        ])
        .unwrap();
        assert_eq!(
            waves,
            vec![vec!["load"], vec!["features", "train"], vec!["evaluate"]]
        );
    }

    #[test]
    fn steps_go_in_the_earliest_wave() {
        let waves = run(&[("a", &[]), ("b", &["a"]), ("c", &["b"]), ("d", &["a"])]).unwrap();
        assert_eq!(waves, vec![vec!["a"], vec!["b", "d"], vec!["c"]]);
    }

    #[test]
    fn repeated_upstream_counts_once() {
        let waves = run(&[("a", &[]), ("b", &["a", "a"])]).unwrap();
        assert_eq!(waves, vec![vec!["a"], vec!["b"]]);
    }

    #[test]
    fn duplicates_are_named() {
        let err = run(&[("a", &[]), ("b", &[]), ("a", &[]), ("b", &[])]).unwrap_err();
        assert!(
            err.contains("`a` (2 times)") && err.contains("`b` (2 times)"),
            "{err}"
        );
        assert!(err.contains("unique"), "{err}");
    }

    #[test]
    fn empty_name_is_refused() {
        let err = run(&[("a", &[]), (" ", &[])]).unwrap_err();
        assert!(err.contains("step number 2"), "{err}");
    }

    #[test]
    fn unknown_upstream_is_named() {
        let err = run(&[("a", &[]), ("b", &["a", "ghost"])]).unwrap_err();
        assert!(
            err.contains("step `b` waits for unknown step `ghost`"),
            "{err}"
        );
    }

    #[test]
    fn cycle_is_named_in_run_order() {
        let err = run(&[("a", &["c"]), ("b", &["a"]), ("c", &["b"]), ("d", &[])]).unwrap_err();
        assert!(err.contains("a -> b -> c -> a"), "{err}");
        assert!(!err.contains("blocked"), "{err}");
    }

    #[test]
    fn self_dependency_is_a_cycle() {
        let err = run(&[("a", &["a"])]).unwrap_err();
        assert!(err.contains("a -> a"), "{err}");
    }

    #[test]
    fn steps_behind_a_cycle_are_listed_apart() {
        let err = run(&[
            ("start", &[]),
            ("after", &["x"]),
            ("x", &["y", "start"]),
            ("y", &["x"]),
        ])
        .unwrap_err();
        assert!(err.contains("x -> y -> x"), "{err}");
        assert!(
            err.contains("also blocked behind the cycle: after"),
            "{err}"
        );
        assert!(!err.contains("start"), "{err}");
    }
}
