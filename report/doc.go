// Package report turns a run's artifacts directory into a static HTML
// report a reviewer opens from a file or a CI artifact download: no
// server, no external files, nothing fetched.
//
// Build reads what the harness wrote per spec (spec.json, exits.json,
// kmsg.txt, trace.txt and, in a run with timelines, timeline.txt), the
// run's JUnit properties and, after --repeat, summary.json, into a Report;
// Write renders it: index.html (the run summary, each spec's outcome or
// pass rate, counts per label, links to coverage pages when a coverage/
// directory is there) and a page per spec (outcome, failure and location,
// every scheduler's exit, the raw artifacts, the repro command, and its
// timeline as SVG).
//
// A timeline (timeline.go) has one lane per vCPU showing which scheduler
// owned the running task, from the timeline tracer's context-switch lines
// (fixtures/timeline.bpf.c: the next task's scheduling class and its
// task_struct.scx.sched at every switch), and rows of marks: schedulers
// enabled and disabled and their exits (kernel log), the fixtures'
// sub_attach/sub_detach callbacks, sub-dispatch calls (counted per CPU and
// 10 ms in the kernel), sched_ext tracepoint events, and kernel log lines.
// Dense rows are drawn in time buckets (svg.go).
package report
