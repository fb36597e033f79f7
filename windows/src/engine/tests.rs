//! The engine against brute-force batch computations, under disorder, lateness and restore.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::spec::aligned_starts;

type Key = u8;
/// (key, event time, value) in arrival order.
type Events = Vec<(Key, i64, f64)>;
/// (key, start, end) → (count, sum, min, max, first, last).
type Expected = BTreeMap<(Key, i64, i64), (u64, f64, f64, f64, f64, f64)>;

const BOUND: i64 = 5_000;

fn config(kind: WindowKind) -> EngineConfig {
    EngineConfig {
        kind,
        aggregates: AggregateSpec::default(),
        allowed_lateness_ms: 0,
        emit: EmitMode::OnClose,
        max_open_entries: 0,
    }
}

/// Events with disorder within `BOUND`: event times, then arrival = time + delay, sorted.
fn disordered() -> impl Strategy<Value = Events> {
    // Whole seconds, so window, gap and range boundaries are hit exactly and often.
    proptest::collection::vec((0u8..3, 0i64..400, -50i64..50, 0i64..BOUND), 1..150).prop_map(
        |raw| {
            let mut events: Vec<(i64, Key, i64, f64)> = raw
                .into_iter()
                .map(|(k, t, v, delay)| (t * 1000 + delay, k, t * 1000, v as f64))
                .collect();
            events.sort_by_key(|e| e.0);
            events.into_iter().map(|(_, k, t, v)| (k, t, v)).collect()
        },
    )
}

/// Feeds events with a bounded-out-of-orderness watermark; returns final outputs by window.
/// [`run`] from a fresh watermark, then every window closed.
fn run_to_end(
    engine: &mut WindowEngine<Key>,
    events: &[(Key, i64, f64)],
) -> Vec<WindowOutput<Key>> {
    let mut max_seen = i64::MIN / 2;
    let mut out = run(engine, events, &mut max_seen);
    out.extend(engine.advance_watermark(i64::MAX / 2));
    out
}

/// `engine` saved as a snapshot and restored from its bytes.
fn restored(kind: WindowKind, engine: &WindowEngine<Key>) -> WindowEngine<Key> {
    let bytes = postcard::to_stdvec(&engine.snapshot()).unwrap();
    WindowEngine::restore(config(kind), postcard::from_bytes(&bytes).unwrap()).unwrap()
}

fn run(
    engine: &mut WindowEngine<Key>,
    events: &[(Key, i64, f64)],
    max_seen: &mut i64,
) -> Vec<WindowOutput<Key>> {
    let mut out = Vec::new();
    for (key, time, value) in events {
        engine
            .add(key, *time, *value, None)
            .expect("no event is late within the bound");
        *max_seen = (*max_seen).max(*time);
        out.extend(engine.advance_watermark(*max_seen - BOUND));
    }
    out
}

fn finals(outputs: Vec<WindowOutput<Key>>) -> Expected {
    let mut latest: BTreeMap<(Key, i64, i64), WindowOutput<Key>> = BTreeMap::new();
    for output in outputs {
        let id = (output.key, output.start_ms, output.end_ms);
        // Like the sinks: the highest version wins, and a later output of the same version too.
        if latest
            .get(&id)
            .is_none_or(|seen| output.version >= seen.version)
        {
            latest.insert(id, output);
        }
    }
    latest
        .into_iter()
        .map(|(id, o)| {
            let s = o.result.summary;
            (
                id,
                (s.count, o.result.sum, s.min, s.max, s.first.1, s.last.1),
            )
        })
        .collect()
}

/// Events sorted by (time, arrival) per key: the order the ordered kinds process them in.
fn sorted_by_key(events: &[(Key, i64, f64)]) -> BTreeMap<Key, Vec<(i64, f64)>> {
    let mut indexed: Vec<(i64, usize, Key, f64)> = events
        .iter()
        .enumerate()
        .map(|(i, (k, t, v))| (*t, i, *k, *v))
        .collect();
    indexed.sort_by_key(|a| (a.0, a.1));
    let mut by_key: BTreeMap<Key, Vec<(i64, f64)>> = BTreeMap::new();
    for (t, _, k, v) in indexed {
        by_key.entry(k).or_default().push((t, v));
    }
    by_key
}

fn summarize(values: &[(i64, f64)]) -> (u64, f64, f64, f64, f64, f64) {
    let count = values.len() as u64;
    let sum: f64 = values.iter().map(|v| v.1).sum();
    let min = values.iter().map(|v| v.1).fold(f64::INFINITY, f64::min);
    let max = values.iter().map(|v| v.1).fold(f64::NEG_INFINITY, f64::max);
    let first_time = values.iter().map(|v| v.0).min().unwrap_or(0);
    let last_time = values.iter().map(|v| v.0).max().unwrap_or(0);
    let first = values
        .iter()
        .find(|v| v.0 == first_time)
        .map_or(0.0, |v| v.1);
    let last = values
        .iter()
        .rev()
        .find(|v| v.0 == last_time)
        .map_or(0.0, |v| v.1);
    (count, sum, min, max, first, last)
}

fn brute_aligned(events: &[(Key, i64, f64)], size: i64, slide: i64) -> Expected {
    let mut groups: BTreeMap<(Key, i64, i64), Vec<(i64, f64)>> = BTreeMap::new();
    for (key, time, value) in events {
        for start in aligned_starts(*time, size, slide, 0) {
            groups
                .entry((*key, start, start + size))
                .or_default()
                .push((*time, *value));
        }
    }
    groups
        .into_iter()
        .map(|(id, values)| (id, summarize(&values)))
        .collect()
}

fn brute_ordered(events: &[(Key, i64, f64)], kind: WindowKind) -> Expected {
    let mut expected = Expected::new();
    for (key, values) in sorted_by_key(events) {
        match kind {
            WindowKind::Sliding {
                range_ms,
                rows,
                offset_ms,
            } => {
                for (index, (time, _)) in values.iter().enumerate() {
                    let end = time - offset_ms;
                    let mut window: Vec<(i64, f64)> = values[..=index]
                        .iter()
                        .filter(|(t, _)| *t <= end && (range_ms == 0 || *t > end - range_ms))
                        .copied()
                        .collect();
                    if rows > 0 && window.len() > rows as usize {
                        window.drain(..window.len() - rows as usize);
                    }
                    if window.is_empty() {
                        continue;
                    }
                    let start = if range_ms > 0 {
                        end - range_ms + 1
                    } else {
                        window[0].0
                    };
                    expected.insert((key, start, end + 1), summarize(&window));
                }
            }
            _ => {
                let mut current: Vec<(i64, f64)> = Vec::new();
                let mut flush = |current: &mut Vec<(i64, f64)>| {
                    if let (Some(first), Some(last)) = (current.first(), current.last()) {
                        let end = match kind {
                            WindowKind::Session { gap_ms, .. } => last.0 + gap_ms,
                            WindowKind::Stagger { length_ms } => first.0 + length_ms,
                            _ => unreachable!(),
                        };
                        expected.insert((key, first.0, end), summarize(current));
                    }
                    current.clear();
                };
                for (time, value) in values {
                    let joins = match (current.first(), current.last(), kind) {
                        (
                            Some(first),
                            Some(last),
                            WindowKind::Session {
                                gap_ms,
                                max_length_ms,
                            },
                        ) => {
                            time - last.0 <= gap_ms
                                && (max_length_ms == 0 || time - first.0 <= max_length_ms)
                        }
                        (Some(first), _, WindowKind::Stagger { length_ms }) => {
                            time < first.0 + length_ms
                        }
                        _ => false,
                    };
                    if !joins {
                        flush(&mut current);
                    }
                    current.push((time, value));
                }
                flush(&mut current);
            }
        }
    }
    expected
}

fn assert_same(actual: &Expected, expected: &Expected) {
    assert_eq!(
        actual.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (id, want) in expected {
        let got = actual[id];
        assert_eq!(
            (got.0, got.2, got.3, got.4, got.5),
            (want.0, want.2, want.3, want.4, want.5),
            "{id:?}"
        );
        assert!(
            (got.1 - want.1).abs() < 1e-6,
            "{id:?} sum {} vs {}",
            got.1,
            want.1
        );
    }
}

/// Events `(key, time, delay)` in arrival order (time + delay): with delays up to 60 s and a
/// 5 s watermark bound, some arrive after the watermark passed them. Returns (arrival, key,
/// time, value) with the input index as value.
fn arrivals(raw: &[(Key, i64, i64)]) -> Vec<(i64, Key, i64, f64)> {
    let mut arrivals: Vec<(i64, Key, i64, f64)> = raw
        .iter()
        .enumerate()
        .map(|(i, (k, t, d))| (t + d, *k, *t, i as f64))
        .collect();
    arrivals.sort_by_key(|a| a.0);
    arrivals
}

fn kinds() -> impl Strategy<Value = WindowKind> {
    prop_oneof![
        (1i64..120).prop_map(|s| WindowKind::Tumbling {
            size_ms: s * 1000,
            offset_ms: 0
        }),
        (1i64..60, 1i64..4).prop_map(|(slide, n)| WindowKind::Hopping {
            size_ms: slide * n * 1000,
            slide_ms: slide * 1000,
            offset_ms: 0
        }),
        (1i64..60, 0i64..120).prop_map(|(gap, max)| WindowKind::Session {
            gap_ms: gap * 1000,
            max_length_ms: max * 1000
        }),
        (1i64..120).prop_map(|l| WindowKind::Stagger {
            length_ms: l * 1000
        }),
        (0i64..60, 0u32..5, prop_oneof![Just(0i64), 0i64..30])
            .prop_filter("range or rows", |(r, n, _)| *r > 0 || *n > 0)
            .prop_map(|(r, rows, offset)| WindowKind::Sliding {
                range_ms: r * 1000,
                rows,
                offset_ms: offset * 1000,
            }),
    ]
}

fn expected_for(kind: WindowKind, events: &[(Key, i64, f64)]) -> Expected {
    match kind.aligned() {
        Some((size, slide, _)) => brute_aligned(events, size, slide),
        None => brute_ordered(events, kind),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn every_kind_equals_the_batch_computation(kind in kinds(), events in disordered()) {
        let mut engine = WindowEngine::new(config(kind));
        let out = run_to_end(&mut engine, &events);
        prop_assert!(out.iter().all(|o| o.is_final));
        assert_same(&finals(out), &expected_for(kind, &events));
        let keeps_rows = matches!(kind, WindowKind::Sliding { range_ms: 0, .. });
        if !keeps_rows {
            prop_assert_eq!(engine.open_entries(), 0, "no state once everything closed");
        }
    }

    #[test]
    fn snapshot_restore_continue_equals_uninterrupted(kind in kinds(), events in disordered(), cut in 0usize..150) {
        let cut = cut.min(events.len());
        let expected = run_to_end(&mut WindowEngine::new(config(kind)), &events);

        let mut first = WindowEngine::new(config(kind));
        let mut max_seen = i64::MIN / 2;
        let mut actual = run(&mut first, &events[..cut], &mut max_seen);
        let mut restored = restored(kind, &first);
        actual.extend(run(&mut restored, &events[cut..], &mut max_seen));
        actual.extend(restored.advance_watermark(i64::MAX / 2));
        prop_assert_eq!(actual, expected);
    }

    #[test]
    fn a_key_hasher_never_changes_results(kind in kinds(), events in disordered(), cut in 0usize..150) {
        // Every key in one bucket, and keys side by side: both must give the default's output,
        // also across a snapshot restored under another hasher.
        let cut = cut.min(events.len());
        let expected = run_to_end(&mut WindowEngine::new(config(kind)), &events);

        let mut colliding = WindowEngine::new(config(kind)).with_key_hasher(KeyHasher::new(|_: &Key| 7));
        let mut max_seen = i64::MIN / 2;
        let mut actual = run(&mut colliding, &events[..cut], &mut max_seen);
        let mut adjacent = restored(kind, &colliding)
            .with_key_hasher(KeyHasher::new(|key: &Key| u64::from(*key)));
        actual.extend(run(&mut adjacent, &events[cut..], &mut max_seen));
        actual.extend(adjacent.advance_watermark(i64::MAX / 2));
        prop_assert_eq!(actual, expected);
    }

    #[test]
    fn every_kind_with_lateness_equals_the_batch_computation_of_what_it_accepted(
        // Hopping windows are left out: an event late for one of its windows still counts in
        // its open ones, so "what it accepted" is not a set of events (the next test).
        kind in kinds().prop_filter("not hopping", |k| !matches!(k, WindowKind::Hopping { .. })),
        lateness in prop_oneof![Just(0i64), 1i64..120],
        raw in proptest::collection::vec((0u8..3, 0i64..400_000, 0i64..60_000), 1..150),
    ) {
        let arrivals = arrivals(&raw);
        let mut engine = WindowEngine::new(EngineConfig {
            allowed_lateness_ms: lateness * 1000,
            ..config(kind)
        });
        let mut accepted = Vec::new();
        let mut late = 0;
        let mut out = Vec::new();
        let mut max_seen = i64::MIN / 2;
        for (_, key, time, value) in &arrivals {
            match engine.add(key, *time, *value, None) {
                Ok(()) => accepted.push((*key, *time, *value)),
                Err(Rejection::Late { .. }) => late += 1,
                Err(other) => panic!("{other}"),
            }
            max_seen = max_seen.max(*time);
            out.extend(engine.advance_watermark(max_seen - BOUND));
        }
        out.extend(engine.advance_watermark(i64::MAX / 2));
        if !kind.is_aligned() {
            prop_assert!(out.iter().all(|o| o.is_final && o.version == 1), "settled once, final");
        }
        let finals = finals(out);
        if matches!(kind, WindowKind::Tumbling { .. } | WindowKind::Session { .. } | WindowKind::Stagger { .. }) {
            let counted: u64 = finals.values().map(|v| v.0).sum();
            prop_assert_eq!(counted as usize + late, arrivals.len(), "every event in one final window or late");
        }
        assert_same(&finals, &expected_for(kind, &accepted));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn hopping_lateness_counts_each_event_in_every_window_still_within_lateness(
        slide in 1i64..60,
        windows_per_event in 1i64..4,
        lateness in prop_oneof![Just(0i64), 1i64..60],
        raw in proptest::collection::vec((0u8..3, 0i64..400_000, 0i64..60_000), 1..150),
    ) {
        let (size, slide, lateness) = (slide * windows_per_event * 1000, slide * 1000, lateness * 1000);
        let arrivals = arrivals(&raw);
        let mut engine = WindowEngine::new(EngineConfig {
            allowed_lateness_ms: lateness,
            ..config(WindowKind::Hopping { size_ms: size, slide_ms: slide, offset_ms: 0 })
        });
        let mut taken: BTreeMap<(Key, i64), Vec<(i64, f64)>> = BTreeMap::new();
        let mut out = Vec::new();
        let mut max_seen = i64::MIN / 2;
        let mut watermark: Option<i64> = None;
        for (_, key, time, value) in &arrivals {
            let _ = engine.add(key, *time, *value, None);
            let mut start = time.div_euclid(slide) * slide;
            while start > time - size {
                if watermark.is_none_or(|w| start + size + lateness > w) {
                    taken.entry((*key, start)).or_default().push((*time, *value));
                }
                start -= slide;
            }
            max_seen = max_seen.max(*time);
            out.extend(engine.advance_watermark(max_seen - BOUND));
            watermark = Some(watermark.map_or(max_seen - BOUND, |w| w.max(max_seen - BOUND)));
        }
        out.extend(engine.advance_watermark(i64::MAX / 2));
        let expected: Expected = taken
            .into_iter()
            .map(|((key, start), mut values)| {
                values.sort_by_key(|v| v.0);
                ((key, start, start + size), summarize(&values))
            })
            .collect();
        assert_same(&finals(out), &expected);
    }
}

#[test]
fn lateness_on_a_session_window_waits_and_merges_what_arrives_late() {
    let mut engine = WindowEngine::new(EngineConfig {
        allowed_lateness_ms: 35_000,
        ..config(WindowKind::Session {
            gap_ms: 10_000,
            max_length_ms: 0,
        })
    });
    let key = 0u8;
    engine.add(&key, 0, 1.0, None).unwrap();
    engine.add(&key, 25_000, 2.0, None).unwrap();
    // Without lateness, [0, 10 s) and [25 s, 35 s) would be two sessions, both closed by
    // watermark 40 s, before the events that join them arrive.
    assert!(engine.advance_watermark(40_000).is_empty(), "still waiting");
    assert_eq!(
        engine.add(&key, 15_000, 3.0, None),
        Ok(()),
        "within 35 s of lateness"
    );
    engine.add(&key, 8_000, 4.0, None).unwrap();
    let out = engine.advance_watermark(80_000);
    assert_eq!(out.len(), 1, "one merged session: {out:?}");
    assert_eq!((out[0].start_ms, out[0].end_ms), (0, 35_000));
    assert_eq!(out[0].result.summary.count, 4);
    assert!(matches!(
        engine.add(&key, 40_000, 5.0, None),
        Err(Rejection::Late { .. })
    ));
}

#[test]
fn late_event_within_lateness_re_emits_a_higher_version() {
    let mut engine = WindowEngine::new(EngineConfig {
        allowed_lateness_ms: 30_000,
        ..config(WindowKind::Tumbling {
            size_ms: 60_000,
            offset_ms: 0,
        })
    });
    engine.add(&1, 10_000, 1.0, None).unwrap();
    let first = engine.advance_watermark(60_000);
    assert_eq!((first[0].version, first[0].result.summary.count), (1, 1));
    engine.add(&1, 20_000, 2.0, None).unwrap();
    let second = engine.advance_watermark(60_000);
    assert_eq!((second[0].version, second[0].result.summary.count), (2, 2));
    assert!(second[0].is_final);
    engine.advance_watermark(90_000);
    assert_eq!(engine.open_entries(), 0);
    assert!(matches!(
        engine.add(&1, 30_000, 3.0, None),
        Err(Rejection::Late { .. })
    ));
}

#[test]
fn early_and_per_update_firings_precede_the_final_result() {
    let mut engine = WindowEngine::new(EngineConfig {
        emit: EmitMode::Early {
            interval_ms: 10_000,
        },
        ..config(WindowKind::Tumbling {
            size_ms: 60_000,
            offset_ms: 0,
        })
    });
    engine.add(&1, 1_000, 1.0, None).unwrap();
    let early = engine.poll(0);
    assert_eq!(
        (early.len(), early[0].is_final, early[0].version),
        (1, false, 1)
    );
    engine.add(&1, 2_000, 1.0, None).unwrap();
    assert!(engine.poll(5_000).is_empty(), "interval not reached");
    assert_eq!(engine.poll(10_000).len(), 1);
    assert!(engine.poll(20_000).is_empty(), "nothing changed");
    let closed = engine.advance_watermark(60_000);
    assert_eq!((closed[0].is_final, closed[0].version), (true, 3));

    let mut session = WindowEngine::new(EngineConfig {
        emit: EmitMode::OnUpdate,
        ..config(WindowKind::Session {
            gap_ms: 10_000,
            max_length_ms: 0,
        })
    });
    session.add(&1, 1_000, 1.0, None).unwrap();
    session.advance_watermark(2_000);
    let update = session.poll(0);
    assert_eq!((update.len(), update[0].is_final), (1, false));
}

#[test]
fn observed_watermark_decides_lateness_before_the_batch_closes() {
    let mut engine = WindowEngine::new(config(WindowKind::Tumbling {
        size_ms: 60_000,
        offset_ms: 0,
    }));
    engine.add(&1, 10_000, 1.0, None).unwrap();
    engine.observe_watermark(70_000);
    assert!(matches!(
        engine.add(&1, 20_000, 1.0, None),
        Err(Rejection::Late { .. })
    ));
    let closed = engine.advance_watermark(70_000);
    assert_eq!(closed[0].result.summary.count, 1);
}

#[test]
fn state_cap_rejects_new_entries_and_counts_them() {
    let mut engine = WindowEngine::new(EngineConfig {
        max_open_entries: 2,
        ..config(WindowKind::Tumbling {
            size_ms: 60_000,
            offset_ms: 0,
        })
    });
    engine.add(&1, 0, 1.0, None).unwrap();
    engine.add(&2, 0, 1.0, None).unwrap();
    engine.add(&1, 1, 1.0, None).unwrap();
    assert_eq!(
        engine.add(&3, 0, 1.0, None),
        Err(Rejection::StateCap { limit: 2 })
    );
    assert_eq!(engine.open_entries(), 2);
    assert!(engine.state_bytes() > 0);
}

#[test]
fn restore_refuses_a_different_window_kind() {
    let engine: WindowEngine<Key> = WindowEngine::new(config(WindowKind::Tumbling {
        size_ms: 60_000,
        offset_ms: 0,
    }));
    let error = WindowEngine::restore(
        config(WindowKind::Tumbling {
            size_ms: 30_000,
            offset_ms: 0,
        }),
        engine.snapshot(),
    )
    .unwrap_err();
    assert!(error.to_string().contains("size_ms: 60000"), "{error}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// `add_many` is `add` per entry: the same outputs, the same state, and per event the
    /// rejection the one-by-one adds met first, with lateness and a state cap in play.
    #[test]
    fn adding_an_events_values_together_equals_adding_them_one_by_one(
        kind in kinds(),
        events in proptest::collection::vec(
            (0i64..300, 0i64..8_000, proptest::collection::vec((0u8..4, -50i64..50), 0..5)),
            1..80,
        ),
        lateness in prop_oneof![Just(0i64), 1_000i64..20_000],
        cap in prop_oneof![Just(0usize), 1usize..12],
    ) {
        let config = EngineConfig {
            allowed_lateness_ms: lateness,
            max_open_entries: cap,
            ..config(kind)
        };
        let mut together = WindowEngine::new(config.clone());
        let mut one_by_one = WindowEngine::new(config);
        let (mut out_together, mut out_one_by_one) = (Vec::new(), Vec::new());
        let mut max_seen = i64::MIN / 2;
        for (seconds, delay, values) in events {
            // Arrival up to 8 s behind the newest event, so some events are late.
            let time = seconds * 1000;
            max_seen = max_seen.max(time + delay);
            let entries: Vec<(Key, f64)> = values.into_iter().map(|(k, v)| (k, v as f64)).collect();
            let rejected_together = together.add_many(time, None, &entries).err();
            let mut rejected_one_by_one = None;
            for (key, value) in &entries {
                if let Err(rejection) = one_by_one.add(key, time, *value, None) {
                    rejected_one_by_one.get_or_insert(rejection);
                }
            }
            prop_assert_eq!(rejected_together, rejected_one_by_one);
            out_together.extend(together.advance_watermark(max_seen - 4_000));
            out_one_by_one.extend(one_by_one.advance_watermark(max_seen - 4_000));
            prop_assert_eq!(together.open_entries(), one_by_one.open_entries());
        }
        out_together.extend(together.advance_watermark(i64::MAX / 2));
        out_one_by_one.extend(one_by_one.advance_watermark(i64::MAX / 2));
        prop_assert_eq!(out_together, out_one_by_one);
    }
}
