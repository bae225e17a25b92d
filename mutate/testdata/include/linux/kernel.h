/* Stubs that let the snippets in mutate/testdata compile on their own
 * (gcc -fsyntax-only), so that the tests can check every mutant compiles. */
#ifndef STUB_KERNEL_H
#define STUB_KERNEL_H
#include <stdbool.h>
#include <stddef.h>
#define CONFIG_EXT_SUB_SCHED 1
#define EINVAL 22
#define unlikely(x) __builtin_expect(!!(x), 0)
#define __bpf_kfunc
#define __bpf_kfunc_end_defs()
#define guard(name) guard_##name
typedef unsigned long long u64;
struct sched { struct sched *parent; int level, count, dead, ok; const char *name; char sep; };
struct scx_sched;
struct bpf_prog_aux;
struct rq { struct { struct task_struct *sub_dispatch_prev; } scx; };
enum { SCX_DSP_NONE };
#define WARN_ON_ONCE(x) ((void)(x))
void pr_info(const char *fmt, ...);
void pr_err(const char *fmt, ...);
void kick(struct sched *);
#define for_each_child(pos, sch) for (pos = (sch); pos; pos = NULL)
static struct sched *pos;
static inline void guard_rcu(void) {}
struct rq *scx_locked_rq(void);
struct scx_sched *scx_prog_sched(const struct bpf_prog_aux *aux);
struct scx_sched *scx_find_sub_sched(u64 cgroup_id);
struct scx_sched *scx_parent(struct scx_sched *);
void scx_error(struct scx_sched *, const char *fmt, ...);
int scx_dispatch_sched(struct scx_sched *, struct rq *, struct task_struct *, bool);
#endif
