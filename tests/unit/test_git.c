/* Git metadata read without git, checked against repositories made by the real `git`:
 * loose refs, packed refs (+ packed objects via gc), detached HEAD, linked worktrees,
 * multi-line subjects, no commits yet, outside a repository. Skipped when git is missing. */
#include <stdlib.h>
#include <unistd.h>

#include "bench/git.h"
#include "test.h"
#include "util/error.h"
#include "util/fileio.h"

static char root[2048];

/* `git rev-parse` output of a command, for the expected values. */
static void capture(const char *cmd, char *out, size_t cap) {
    out[0] = '\0';
    FILE *p = popen(cmd, "r");
    if (!p) return;
    if (fgets(out, (int)cap, p)) out[strcspn(out, "\n")] = '\0';
    pclose(p);
}

static void check_repo(const char *dir, const char *want_branch, const char *want_subject) {
    char cmd[4096], want_commit[64];
    snprintf(cmd, sizeof cmd, "git -C '%s' rev-parse HEAD", dir);
    capture(cmd, want_commit, sizeof want_commit);
    gb_git_info g;
    gb_error err;
    CHECK_OK(gb_git_read(dir, &g, &err), &err);
    CHECK(g.found);
    CHECK_STR(g.commit, want_commit);
    CHECK_STR(g.branch, want_branch);
    CHECK_STR(g.subject, want_subject);
    if (!g.subject[0]) fprintf(stderr, "note: %s\n", g.note);
}

int main(void) {
    if (system("git --version >/dev/null 2>&1") != 0) {
        fprintf(stderr, "git not installed: skipping\n");
        TEST_MAIN_END();
    }
    gb_error err;
    snprintf(root, sizeof root, "%s/git", gb_test_tmp());
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    CHECK(system(cmd) == 0);
    CHECK_OK(gb_mkdir_p(root, &err), &err);
    const char *env = "GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=t "
                      "GIT_AUTHOR_EMAIL=t@t GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@t";
    char repo[2100], sub[2200], wt[2200];
    snprintf(repo, sizeof repo, "%s/repo", root);

    /* Fresh repository without commits. */
    snprintf(cmd, sizeof cmd, "%s git init -q -b feature/x '%s'", env, repo);
    CHECK(system(cmd) == 0);
    gb_git_info g;
    CHECK_OK(gb_git_read(repo, &g, &err), &err);
    CHECK(g.found);
    CHECK_STR(g.commit, "");
    CHECK_STR(g.branch, "feature/x");

    /* Loose ref, loose object, multi-line first paragraph. */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && echo a > a && %s git add a && %s git commit -q -m 'First line' "
             "-m 'body text' && echo b > b && %s git add b && "
             "%s git commit -q -F - <<'MSG'\nSecond: with \"quotes\"\ncontinued here\n\nbody\nMSG",
             repo, env, env, env, env);
    CHECK(system(cmd) == 0);
    check_repo(repo, "feature/x", "Second: with \"quotes\" continued here");
    /* From a subdirectory. */
    snprintf(sub, sizeof sub, "%s/deep/er", repo);
    CHECK_OK(gb_mkdir_p(sub, &err), &err);
    check_repo(sub, "feature/x", "Second: with \"quotes\" continued here");

    /* Packed refs and packed objects (gc packs both; delta-compressed commits possible). */
    snprintf(cmd, sizeof cmd, "cd '%s' && %s git pack-refs --all && %s git gc -q --aggressive",
             repo, env, env);
    CHECK(system(cmd) == 0);
    snprintf(cmd, sizeof cmd, "%s/.git/refs/heads/feature/x", repo);
    CHECK_MSG(!gb_is_file(cmd), "ref should be packed: %s", cmd);
    check_repo(repo, "feature/x", "Second: with \"quotes\" continued here");

    /* Detached HEAD at the first commit: no branch. */
    snprintf(cmd, sizeof cmd, "cd '%s' && %s git checkout -q --detach HEAD~1", repo, env);
    CHECK(system(cmd) == 0);
    check_repo(repo, "", "First line");
    snprintf(cmd, sizeof cmd, "cd '%s' && %s git checkout -q feature/x", repo, env);
    CHECK(system(cmd) == 0);

    /* Linked worktree on a new branch with its own commit. */
    snprintf(wt, sizeof wt, "%s/wt", root);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && %s git worktree add -q -b side '%s' && cd '%s' && echo c > c && "
             "%s git add c && %s git commit -q -m 'On the side'",
             repo, env, wt, wt, env, env);
    CHECK(system(cmd) == 0);
    check_repo(wt, "side", "On the side");
    check_repo(repo, "feature/x", "Second: with \"quotes\" continued here");

    /* Outside any repository: found = false with a note. */
    char outside[2200];
    snprintf(outside, sizeof outside, "/");
    CHECK_OK(gb_git_read(outside, &g, &err), &err);
    CHECK(!g.found);
    CHECK(g.note[0] != '\0');
    TEST_MAIN_END();
}
