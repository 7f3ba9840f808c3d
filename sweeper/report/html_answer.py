"""The HTML page's answer box, at its top: what a reader came for, in plain words, before any plot or table.

- the best configuration with its n and 95% interval (and its test score, reported, never ranked by); for a
  report with no configuration of n >= 2, that no comparison over seeds was possible, and the best trial;
- the configurations indistinguishable from it ("≈"), those worse, those untested, and how they were tested;
- the study's differences between neighbouring variants that our replicates show real (a sweep with references);
- how the reproduction compares with the study's numbers (a sweep with references);
- the compute each sweep cost.

Every number is a cell of the tables below it (analysis.py's and sections.py's Sections, header_footer.py's compute
line), so the box and the tables cannot disagree; this module only chooses and words them.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from sweeper.report.analysis import configurations, test_metric
from sweeper.report.frame import Report
from sweeper.report.header_footer import compute_line, pending_line
from sweeper.report.pairs import NOT_SHOWN
from sweeper.report.sections import MISSING, Section, label
from sweeper.report.stats import BEST, TIED, UNTESTED, WORSE, family

LISTED = 8  # configurations, differences or variants named in one item; more are counted


@dataclass
class Item:
    """One line of the box: its id (answer-<key>), a heading and its body (markup, already escaped)."""

    key: str
    heading: str
    body: str


def esc(text: object) -> str:
    return html.escape(str(text))


def by_key(sec: Section) -> list[dict[str, str]]:
    """The section's rows as {column key: cell}."""
    return [dict(zip(sec.keys, row, strict=True)) for row in sec.cells]


def sentences(lines: list[str]) -> str:
    """Lines of the markdown report as one paragraph of sentences."""
    return esc(". ".join(line.rstrip(".") for line in lines) + ".") if lines else ""


def _value(cls: str, text: str) -> str:
    return f'<span class="{cls}">{esc(text)}</span>'


def _list(entries: list[str], where: str) -> str:
    """Entries (markup) as a list, the first LISTED of them; the rest counted, pointing to the table `where`."""
    more = [f"… and {len(entries) - LISTED} more ({esc(where)} lists them)"] if len(entries) > LISTED else []
    return '<ul class="list">' + "".join(f"<li>{e}</li>" for e in [*entries[:LISTED], *more]) + "</ul>" if entries \
        else ""


def _best(rep: Report, configs: Section) -> list[Item]:
    frame, _ = configurations(rep)  # the rows of `configs`, in its order: their labels
    rows = by_key(configs)
    marks = frame["mark"].tolist()
    labels = frame["label"].tolist()
    at = marks.index(BEST)
    best = rows[at]
    test = test_metric(rep.metric)
    score = "" if best[test] == MISSING else (
        f"; {esc(label(test))} {_value('test', best[test])} {esc(best['test_ci'])} (the final score, reported, "
        f"never used to pick)")
    value = f'{_value("mean", best[rep.metric])} {_value("ci", best["ci"])}, n={_value("n", best["n"])}'
    items = [Item("best", "Best configuration",
                  f'<strong class="label">{esc(labels[at])}</strong>: {esc(rep.metric)} {value}{score}')]
    tested = [i for i, m in enumerate(marks) if m != UNTESTED]
    if len(tested) < 2:
        items.append(Item("tied", "Compared with it", sentences(rep.comparison.lines())))
        return items
    tied = [i for i in tested if marks[i] == TIED]
    worse = sum(marks[i] == WORSE for i in tested)
    untested = len(marks) - len(tested)
    names = [f"{esc(labels[i])}: {esc(rows[i][rep.metric])} {esc(rows[i]['ci'])}, n={esc(rows[i]['n'])}, "
             f"p (Holm) {esc(rows[i]['p'])}" for i in tied]
    kinds = " and ".join(sorted({frame["test"].iloc[i] for i in tested if marks[i] != BEST}, reverse=True))
    ns = sorted({int(frame["n"].iloc[i]) for i in tested})
    how = f"{kinds} t-tests against the best, n={ns[0]}" + (" each" if len(ns) == 1 else f"-{ns[-1]}")
    body = (f"{_value('tied-count', str(len(tied)))} configuration{'' if len(tied) == 1 else 's'} "
            f"({esc(how)}; {esc(family(len(tested)))}). Worse: {_value('worse-count', str(worse))}.")
    body += f" Untested (n &lt; 2): {untested}." if untested else ""
    body += _list(names, configs.title)
    left = [line for line in rep.comparison.lines() if line.startswith("left out")]
    body += f'<span class="how">{sentences(left)}</span>' if left else ""
    items.append(Item("tied", "Indistinguishable from the best", body))
    return items


def _best_trial(rep: Report, trials: list[Section]) -> list[Item]:
    """No configuration has two replicates: say so, and show the best trial (its row's cells)."""
    why = rep.comparison.lines() or ["no configuration has 2 or more replicates that ran their whole protocol"]
    items = [Item("tied", "No comparison over seeds", f"No comparison over seeds was possible: {sentences(why)}")]
    found = [(s, s.best) for s in trials if s.best is not None]
    if not found:
        items.insert(0, Item("best", "Best trial", f"No trial has a value of {esc(rep.metric)} yet."))
        return items
    sec, at = found[0]
    row = dict(zip(sec.keys, sec.cells[at], strict=True))
    names = [row[k] for k in ("sweep", "variant") if k in row]
    who = ", ".join(names + ([f"trial {row['trial_id']}"] if "trial_id" in row else []))
    params = ", ".join(f"{esc(k)}={esc(row[k])}" for k in sec.keys
                       if k in rep.param_codes and k not in ("sweep", "variant", "trial_id"))
    test = test_metric(rep.metric)
    score = f", {esc(label(test))} {_value('test', row[test])}" if row.get(test, MISSING) != MISSING else ""
    items.insert(0, Item("best", "Best trial",
                         f'<strong class="label">{esc(who)}</strong>{f" ({params})" if params else ""}: '
                         f'{esc(rep.metric)} {_value("mean", row[rep.metric])}{score}, one run (no interval)'))
    return items


def _differences(pairs: Section | None) -> list[Item]:
    if pairs is None:
        return []
    rows = by_key(pairs)
    real = [r for r in rows if r["verdict"] not in (NOT_SHOWN, UNTESTED)]
    listed = [f"{esc(r['a'])} − {esc(r['b'])}: {esc(r['verdict'])}; study {esc(r['ref_delta'])}, ours "
              f"{esc(r['delta'])} {esc(r['ci'])}, p (Holm) {esc(r['p'])}" for r in real]
    body = sentences(pairs.notes[:1]) + _list(listed, pairs.title)
    return [Item("differences", "What is real among the study's differences", body)]


def _reference(head: Section | None) -> list[Item]:
    if head is None:
        return []
    rows = by_key(head)
    off = [r for r in rows if r["verdict"] in ("above", "below")]
    listed = [f"{esc(r['variant'])}: study {esc(r['ref'])}, {esc(r['verdict'])} our {esc(r['mean'])} "
              f"{esc(r['ci'])}, n={esc(r['n'])}" for r in off]
    body = sentences(head.notes[:1]) + _list(listed, head.title)
    return [Item("reference", "The reproduction against the study", body)]


def answer_items(rep: Report, configs: Section | None, head: Section | None, pairs: Section | None,
                 trials: list[Section]) -> list[Item]:
    """The box's lines, from the page's own sections: the Configurations table, the reference table, the study's
    differences and the trial tables."""
    items = _best(rep, configs) if configs is not None else _best_trial(rep, trials)
    items += _differences(pairs) + _reference(head)
    compute = [line for line in (compute_line(s) for s in rep.sweeps) if line]
    if compute:
        items.append(Item("compute", "Compute", "<br>".join(esc(line.removeprefix("compute of ")) for line in compute)))
    pending = pending_line(rep)
    if pending:
        items.append(Item("pending", "Not in these numbers yet", esc(pending)))
    return items


def answer_html(rep: Report, configs: Section | None, head: Section | None, pairs: Section | None,
                trials: list[Section]) -> str:
    scope = f"{len(rep.trials)} trial{'' if len(rep.trials) == 1 else 's'} of {', '.join(s.name for s in rep.sweeps)}"
    scope += f" where {rep.where}" if rep.where else ""
    dl = "".join(f'<div class="item" id="answer-{i.key}"><dt>{esc(i.heading)}</dt><dd>{i.body}</dd></div>'
                 for i in answer_items(rep, configs, head, pairs, trials))
    return (f'<section id="answer" class="answer"><h2>The answer</h2><p class="scope">{esc(rep.metric)} '
            f'({"higher" if rep.mode == "max" else "lower"} is better) over {esc(scope)}</p><dl>{dl}</dl></section>')
