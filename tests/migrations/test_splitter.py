import pytest

from supagate.migrations.splitter import SplitError, split_statements


def texts(sql):
    return [s.text for s in split_statements(sql)]


def test_splits_on_semicolons_and_trims():
    assert texts("create table a (id int);\n\n  insert into a values (1)  ;") == [
        "create table a (id int)", "insert into a values (1)"]


def test_keeps_leading_comments_and_a_trailing_comment_statement():
    assert texts("-- hello\nselect 1;\n-- bye\n") == ["-- hello\nselect 1", "-- bye"]


def test_semicolons_inside_quotes_comments_and_dollar_quotes_do_not_split():
    sql = ("select 'a;b', \"we;ird\", E'x\\';y', 'it''s;';\n"
           "/* a ; /* nested ; */ still ; */ select 2;\n"
           "create function f() returns int language plpgsql as $body$ begin return 1; end $body$;")
    assert len(texts(sql)) == 3


def test_begin_atomic_body_is_one_statement():
    sql = ("create function add1(a int) returns int language sql\nbegin atomic\n"
           "  select case when a > 0 then a + 1 else 0 end;\nend;\nselect 1;")
    assert len(texts(sql)) == 2


def test_empty_statements_are_dropped():
    assert texts(";;select 1;;") == ["select 1"]


def test_line_numbers_point_at_statement_start():
    stmts = split_statements("select 1;\n\n\nselect\n2;")
    assert [s.line for s in stmts] == [1, 4]


@pytest.mark.parametrize("sql, what", [
    ("select 'open", "quoted string"),
    ("select $$ open", "dollar-quoted"),
    ("/* open", "block comment"),
])
def test_unterminated_tokens_raise_with_line(sql, what):
    with pytest.raises(SplitError, match=what):
        split_statements("select 1;\n" + sql)
