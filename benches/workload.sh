# shellcheck shell=bash
# The training workload that benches/text_order.sh (the functions that run, for the layout) and
# benches/pgo.sh (the branches and calls they take, for profile-guided optimization) run: what a
# typical session does (ingest and compact of a generated fleet, scan, report, stats, rules, and
# SQL a responder writes). None of it is the SQL of benches/query_vs_duckdb.py nor the real logs
# of the ingest benchmarks, so those measure the build on work it was not trained on.
#
# Source this file, then: training_workload BIN WORK RUN
#   BIN   the evtxsql binary to train; WORK a scratch directory (logs and a store go there);
#   RUN   a command that runs one step given as its arguments (e.g. under callgrind), and fails
#         when the step fails. Run from the repository's root (it reads samples/data).
training_workload() {
  local b=$1 work=$2 run=$3
  "$b" samples generate --scenario all --hosts 12 --days 2 --events 20000 --seed 5 \
    --out "$work/logs" --quiet
  local store=$work/store sql format
  "$run" "$b" ingest "$work/logs" --store "$store" --quiet
  "$run" "$b" ingest "$work/logs" --store "$store" --quiet
  "$run" "$b" compact "$store"
  "$run" "$b" scan samples/data --quiet
  "$run" "$b" scan samples/data --quiet --format html --out "$work/r.html"
  "$run" "$b" report "$store"
  "$run" "$b" report "$store" --format json
  "$run" "$b" stats "$store"
  "$run" "$b" rules list
  "$run" "$b" --help
  "$run" "$b" query --help
  "$run" "$b" query samples/data/spoofed-server "SELECT computer, count(*) AS n FROM events GROUP BY computer"
  for sql in \
    "SELECT 1" \
    "SELECT * FROM events WHERE event_id = 4625 ORDER BY time_created DESC LIMIT 20" \
    "SELECT computer, count(*) AS n FROM events WHERE channel = 'Security' AND event_id IN (4624, 4625) GROUP BY computer ORDER BY n DESC LIMIT 10" \
    "SELECT user_name, count(DISTINCT computer) AS hosts FROM events WHERE user_name LIKE '%admin%' OR user_name = 'guest' GROUP BY user_name" \
    "SELECT data->>'ShareName' AS share, count(*) AS n FROM events WHERE event_id = 5140 GROUP BY share ORDER BY n DESC" \
    "SELECT provider, event_id, min(time_created) AS first, max(time_created) AS last, count(*) AS n FROM events GROUP BY provider, event_id" \
    "SELECT f.path, count(*) AS n FROM events e JOIN files f ON e.file_id = f.file_id GROUP BY f.path ORDER BY n DESC LIMIT 5" \
    "SELECT date_trunc('day', time_created) AS day, channel, count(*) AS n FROM events GROUP BY day, channel ORDER BY day, channel" \
    "SELECT computer, time_created, time_created - lag(time_created) OVER (PARTITION BY computer ORDER BY time_created) AS gap FROM events WHERE event_id = 31010 LIMIT 50" \
    "SELECT count(*) FROM events WHERE time_created BETWEEN now() - INTERVAL '30 days' AND now() AND level <= 3" \
    "SELECT event_id, count(*) AS n FROM events WHERE regexp_like(data, 'guest', 'i') GROUP BY event_id ORDER BY n DESC" \
    "SELECT server_name, client_ip, count(*) AS n FROM smb_server GROUP BY server_name, client_ip ORDER BY n DESC LIMIT 20" \
    "SELECT DISTINCT channel FROM events ORDER BY channel" \
    "SELECT upper(computer) AS host, CASE WHEN status = 0 THEN 'ok' ELSE 'failed' END AS outcome, count(*) AS n FROM events WHERE status IS NOT NULL GROUP BY host, outcome" \
    "EXPLAIN ANALYZE SELECT count(*) FROM events WHERE event_id = 31017 AND computer LIKE 'WKS%'"; do
    for format in table csv json; do
      "$run" "$b" query "$store" --format "$format" "$sql"
    done
  done
}
