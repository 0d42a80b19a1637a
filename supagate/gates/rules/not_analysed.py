"""not-analysed: something the shadow database could not observe, so the verdict would
rest on a partial analysis: a statement that runs code (a DO block, CALL, a call of a
function the migrations define, DML) but could not run there, or a file whose executed
statements could not be logged. Blocks on every tier: nothing that was not analysed
passes."""

from supagate.findings import MANDATORY, Finding
from supagate.gates.rule import Rule

ID = "not-analysed"


def skipped(file: str, line: int, text: str, reason: str) -> Finding:
    head = " ".join(text.split())[:80]
    return Finding(ID, head, file=file, line=line, source="shadow",
                   message=f"{file}:{line} runs code that could not run in the shadow database ({reason}), so what "
                           "it does (a DROP or DELETE inside it, say) was not analysed.",
                   fix="Keep the code that needs the missing object apart from anything else (its own statement, "
                       "no EXECUTE or calls of your functions in it), or, after a review of what it does, allow it "
                       f"with `-- gate:allow {ID} <what it does, who reviewed>` above the statement.")


def unobserved(file: str, why: str) -> Finding:
    return Finding(ID, file, file=file, line=1, source="shadow",
                   message=f"{file}: the statements it executed could not be observed in the shadow database ({why}), "
                           "so rows it may delete were not analysed.",
                   fix="Run the check with its own throwaway shadow database (leave out --db-url), or give one "
                       "with pg_stat_statements preloaded and `pg_stat_statements.track = all`; a migration must not "
                       "change that setting.")


RULE = Rule(ID, "a statement or file whose effects the shadow database could not observe",
            production=MANDATORY, staging=MANDATORY, development=MANDATORY)
