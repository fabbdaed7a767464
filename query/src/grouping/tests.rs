//! The grouping's answers against DataFusion's own, and its early sending under memory pressure.

#![allow(clippy::unwrap_used)]
use super::*;
use crate::cells::row_lines;
use crate::session::{SessionOptions, new_context};
use arrow::array::{
    ArrayRef, DictionaryArray, Int32Array, StringArray, StringViewArray, UInt32Array,
};
use arrow::datatypes::Int32Type;
use arrow::datatypes::{Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("computer", dictionary_key(), true),
        Field::new("n", DataType::UInt32, true),
        Field::new("note", DataType::Utf8, true),
        Field::new("tag", DataType::Utf8View, true),
        Field::new("user", dictionary_key(), true),
    ]))
}

/// The few users of most batches: a null value, two values of one string.
fn users() -> ArrayRef {
    Arc::new(StringArray::from(vec![
        Some("alice"),
        Some("bob"),
        None,
        Some("bob"),
        Some("carol"),
    ]))
}

fn batch(keys: Int32Array, values: &ArrayRef, n: Vec<Option<u32>>) -> RecordBatch {
    batch_with_users(keys, values, n, &users())
}

/// A batch whose `user` is a key into `users` taken from `n` (null where `n` is).
fn batch_with_users(
    keys: Int32Array,
    values: &ArrayRef,
    n: Vec<Option<u32>>,
    users: &ArrayRef,
) -> RecordBatch {
    let user_keys: Int32Array = n
        .iter()
        .map(|v| v.map(|v| (v as usize % users.len()) as i32))
        .collect();
    let user = DictionaryArray::<Int32Type>::try_new(user_keys, Arc::clone(users)).unwrap();
    let note: StringArray = n
        .iter()
        .map(|v| v.map(|v| format!("note {}", v % 7)))
        .collect();
    // Short views (the string inside), long ones (in a buffer), nulls.
    let tag: StringViewArray = n
        .iter()
        .map(|v| {
            v.map(|v| match v % 3 {
                0 => format!("u{}", v % 4),
                1 => format!("a-much-longer-user-name-{}", v % 5),
                _ => "u1".to_string(),
            })
        })
        .collect();
    let dict = DictionaryArray::<Int32Type>::try_new(keys, Arc::clone(values)).unwrap();
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(dict),
            Arc::new(UInt32Array::from(n)),
            Arc::new(note),
            Arc::new(tag),
            Arc::new(user),
        ],
    )
    .unwrap()
}

/// Two partitions whose batches have every shape of dictionary: a null key, a key to a
/// null value, two keys to the same string, one dictionary shared by two batches (the
/// memo kept), dictionaries of the same sizes but other strings one batch after the other, a
/// dictionary much larger than its batch, a null row whose key is beyond the dictionary, an
/// empty batch.
fn partitions() -> Vec<Vec<RecordBatch>> {
    let shared: ArrayRef = Arc::new(StringArray::from(vec![
        Some("WS-B"),
        Some("WS-A"),
        None,
        Some("DC-1"),
    ]));
    let shared_users = users();
    let first = batch_with_users(
        Int32Array::from(vec![Some(0), Some(1), None, Some(2), Some(3), Some(1)]),
        &shared,
        vec![Some(1), Some(2), Some(3), None, Some(5), Some(6)],
        &shared_users,
    );
    let second = batch_with_users(
        Int32Array::from(vec![Some(3), Some(3), Some(0), None]),
        &shared,
        vec![Some(10), None, Some(12), Some(13)],
        &shared_users,
    );
    let twice: ArrayRef = Arc::new(StringArray::from(vec!["WS-A", "WS-A", "NAS-9"]));
    let third = batch(
        Int32Array::from(vec![0, 1, 2, 1, 0]),
        &twice,
        vec![Some(20), Some(21), Some(22), Some(23), None],
    );
    let many: ArrayRef = Arc::new(StringArray::from_iter_values(
        (0..1000).map(|i| format!("HOST-{i:04}")),
    ));
    // A null row whose key (which may be anything) is beyond the dictionary.
    let beyond = Int32Array::new(
        vec![999, 3, 999, 500, 5000].into(),
        Some(vec![true, true, true, true, false].into()),
    );
    // Dictionaries too large for a table of pair counts.
    let many_users: ArrayRef = Arc::new(StringArray::from_iter_values(
        (0..100).map(|i| format!("user-{}", i % 40)),
    ));
    let fourth = batch_with_users(
        beyond,
        &many,
        vec![Some(30), Some(31), Some(32), Some(33), Some(34)],
        &many_users,
    );
    let empty = batch(Int32Array::from(Vec::<i32>::new()), &many, vec![]);
    // Dictionaries of the same sizes as the third batch's, other strings.
    let others: ArrayRef = Arc::new(StringArray::from(vec!["NAS-9", "WS-C", "WS-A"]));
    let other_users: ArrayRef = Arc::new(StringArray::from(vec![
        Some("dave"),
        Some("erin"),
        Some("alice"),
        None,
        Some("bob"),
    ]));
    let fifth = batch_with_users(
        Int32Array::from(vec![0, 1, 2, 1]),
        &others,
        vec![Some(40), Some(41), Some(42), Some(43)],
        &other_users,
    );
    // Batches long enough to be counted in four tables: runs of one key, lengths past a
    // multiple of four and of 64, with nulls (one of them with a key beyond the dictionary) and
    // without.
    let long = |rows: usize, nulls: bool| {
        let keys: Vec<i32> = (0..rows)
            .map(|i| {
                if nulls && i == 100 {
                    77
                } else {
                    ((i / 7) % 3) as i32
                }
            })
            .collect();
        let valid: Vec<bool> = (0..rows)
            .map(|i| !nulls || (i % 11 != 5 && i != 100))
            .collect();
        let keys = Int32Array::new(keys.into(), nulls.then(|| valid.into()));
        let n = (0..rows).map(|i| Some(100 + i as u32)).collect();
        batch(keys, &twice, n)
    };
    let (long_nulls, long_plain) = (long(203, true), long(131, false));
    // Dictionaries whose pair counts fit one table, not four.
    let hosts: ArrayRef = Arc::new(StringArray::from_iter_values(
        (0..200).map(|i| format!("HOST-{:04}", i * 3)),
    ));
    let sixth = batch_with_users(
        Int32Array::from(vec![Some(199), None, Some(0), Some(7), Some(7)]),
        &hosts,
        vec![Some(50), Some(51), None, Some(53), Some(53)],
        &many_users,
    );
    vec![
        vec![first, empty, second, long_nulls, sixth],
        vec![third, fifth, fourth, long_plain],
    ]
}

async fn rows(ctx: &SessionContext, sql: &str) -> Vec<String> {
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    row_lines(&batches, "NULL").unwrap()
}

fn register(ctx: &SessionContext, parts: Vec<Vec<RecordBatch>>) {
    let table = MemTable::try_new(schema(), parts).unwrap();
    ctx.register_table("t", Arc::new(table)).unwrap();
}

const QUERIES: [&str; 19] = [
    "SELECT computer, count(*), count(note), sum(n), min(n), max(n), avg(n) FROM t \
     GROUP BY computer ORDER BY computer NULLS FIRST",
    "SELECT computer, count(*) FILTER (WHERE n > 4), min(note), max(note) FROM t \
     GROUP BY computer ORDER BY computer NULLS FIRST",
    "SELECT lower(c), n FROM (SELECT computer AS c, count(*) AS n FROM t GROUP BY computer) \
     ORDER BY n DESC, c LIMIT 3",
    "SELECT computer, count(DISTINCT n) FROM t GROUP BY computer ORDER BY computer",
    "SELECT computer, note, count(*), sum(n) FROM t GROUP BY computer, note \
     ORDER BY computer NULLS FIRST, note NULLS FIRST",
    "SELECT tag, computer, count(*), max(note) FROM t GROUP BY tag, computer \
     ORDER BY tag NULLS FIRST, computer NULLS FIRST",
    "SELECT computer, tag, n FROM (SELECT computer, tag, count(*) AS n, row_number() OVER \
     (PARTITION BY computer ORDER BY count(*) DESC, tag) AS rn FROM t GROUP BY computer, tag) \
     WHERE rn <= 2 ORDER BY computer NULLS FIRST, n DESC, tag",
    "SELECT computer, n, count(*) FROM t GROUP BY computer, n \
     ORDER BY computer NULLS FIRST, n NULLS FIRST",
    "SELECT computer, big, count(*) FROM (SELECT computer, n * arrow_cast(5000, 'UInt32') \
     AS big FROM t) GROUP BY computer, big ORDER BY computer NULLS FIRST, big NULLS FIRST",
    "SELECT small, computer, count(*) FROM (SELECT computer, arrow_cast(n, 'Int16') - \
     arrow_cast(20, 'Int16') AS small FROM t) GROUP BY small, computer \
     ORDER BY small NULLS FIRST, computer NULLS FIRST",
    "SELECT tag, count(*), sum(n), max(note) FROM t GROUP BY tag ORDER BY tag NULLS FIRST",
    // Rows counted per dictionary key: no aggregate, and two counts of rows.
    "SELECT computer FROM t GROUP BY computer ORDER BY computer NULLS FIRST",
    "SELECT computer, count(*) AS a, count(1) AS b FROM t GROUP BY computer \
     ORDER BY a DESC, computer NULLS FIRST",
    // The filter on the key done by the count (keys that are null, and keys that name a null
    // value, both skipped), and a filter on another column that stays a filter.
    "SELECT computer, count(*) AS a FROM t WHERE computer IS NOT NULL GROUP BY computer \
     ORDER BY a DESC, computer",
    "SELECT computer, count(*) AS a FROM t WHERE note IS NOT NULL GROUP BY computer \
     ORDER BY a DESC, computer NULLS FIRST",
    // Rows counted per pair of dictionary keys (a table of counts, or row by row for large
    // dictionaries), with and without an aggregate.
    "SELECT computer, user, count(*) AS a FROM t GROUP BY computer, user \
     ORDER BY computer NULLS FIRST, user NULLS FIRST",
    "SELECT user, count(DISTINCT computer) AS a FROM t GROUP BY user ORDER BY user NULLS FIRST",
    // Three and four keys: dictionaries, a string, an integer.
    "SELECT computer, user, note, count(*), min(n), max(tag) FROM t GROUP BY computer, user, \
     note ORDER BY computer NULLS FIRST, user NULLS FIRST, note NULLS FIRST",
    "SELECT user, n, computer, tag, count(*) FROM t GROUP BY user, n, computer, tag \
     ORDER BY user NULLS FIRST, n NULLS FIRST, computer NULLS FIRST, tag NULLS FIRST",
];

/// The rule's plans give DataFusion's own answers, and the rule is in the plan of the
/// shapes it takes over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grouping_by_a_dictionary_column_gives_datafusions_answers() {
    let opts = SessionOptions {
        threads: Some(2),
        ..SessionOptions::default()
    };
    let ours = new_context(&opts).unwrap();
    register(&ours, partitions());
    let plain = SessionContext::new_with_config(
        datafusion::prelude::SessionConfig::new().with_target_partitions(2),
    );
    register(&plain, partitions());
    for q in QUERIES {
        let expected = rows(&plain, q).await;
        assert!(expected.len() >= 3, "{q}: {expected:?}");
        assert_eq!(rows(&ours, q).await, expected, "{q}");
    }
    let plan = rows(&ours, &format!("EXPLAIN {}", QUERIES[0]))
        .await
        .join("\n");
    assert!(plan.contains("DictionaryAggregateExec"), "{plan}");
    let view_key = rows(&ours, &format!("EXPLAIN {}", QUERIES[10]))
        .await
        .join("\n");
    assert!(view_key.contains("DictionaryAggregateExec"), "{view_key}");
    let absorbed = rows(&ours, &format!("EXPLAIN {}", QUERIES[13]))
        .await
        .join("\n");
    assert!(absorbed.contains("null keys skipped"), "{absorbed}");
    assert!(!absorbed.contains("FilterExec"), "{absorbed}");
    let pairs = rows(&ours, &format!("EXPLAIN {}", QUERIES[15]))
        .await
        .join("\n");
    assert!(pairs.contains("DictionaryAggregateExec"), "{pairs}");
    for wide in [&QUERIES[17], &QUERIES[18]] {
        let plan = rows(&ours, &format!("EXPLAIN {wide}")).await.join("\n");
        assert!(plan.contains("DictionaryAggregateExec"), "{plan}");
    }
    let kept = rows(&ours, &format!("EXPLAIN {}", QUERIES[14]))
        .await
        .join("\n");
    assert!(
        kept.contains("FilterExec") && !kept.contains("null keys skipped"),
        "{kept}"
    );
    let plan = rows(&plain, &format!("EXPLAIN {}", QUERIES[0]))
        .await
        .join("\n");
    assert!(!plan.contains("DictionaryAggregateExec"), "{plan}");
}

/// Under a memory limit too small for its groups, the partial aggregation sends them on
/// early (more rows out than groups), and what it sends adds up to the true counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_beyond_the_memory_limit_are_sent_on_early() {
    let names: ArrayRef = Arc::new(StringArray::from_iter_values(
        (0..4096).map(|i| format!("{i:05}-{}", "x".repeat(200))),
    ));
    let batches: Vec<RecordBatch> = (0..64)
        .map(|b| {
            let keys = Int32Array::from_iter_values((0..4096).map(|i| (i * 7 + b) % 4096));
            let n = (0..4096).map(|i| Some(i as u32)).collect();
            batch(keys, &names, n)
        })
        .collect();
    let limited = new_context(&SessionOptions {
        memory_limit: Some(1 << 20),
        threads: Some(1),
        spill_dir: None,
    })
    .unwrap();
    register(&limited, vec![batches]);
    let q = "SELECT computer, count(*) AS c FROM t GROUP BY computer";
    let plan = crate::pieces::tests::physical_plan(&limited, q).await;
    let mut ours = None;
    plan.apply(|node| {
        if node.is::<DictionaryAggregateExec>() {
            ours = Some(Arc::clone(node));
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .unwrap();
    let ours = ours.expect("the rule takes the GROUP BY");
    let out: Vec<RecordBatch> = ours
        .execute(0, limited.task_ctx())
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let mut counts = std::collections::BTreeMap::<String, i64>::new();
    let mut rows = 0;
    for b in &out {
        let groups = b.column(0).as_dictionary::<Int32Type>();
        let values = groups.values().as_string::<i32>();
        let partial = b.column(1).as_primitive::<arrow::datatypes::Int64Type>();
        for r in 0..b.num_rows() {
            let key = groups.keys().value(r) as usize;
            *counts.entry(values.value(key).to_string()).or_default() += partial.value(r);
        }
        rows += b.num_rows();
    }
    assert!(
        rows > 4096,
        "{rows} rows: the groups were not sent on early"
    );
    assert_eq!(counts.len(), 4096);
    assert!(counts.values().all(|&c| c == 64));
}
