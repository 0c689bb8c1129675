import subprocess

from components.registry.git_branch import commit_to_branch, is_git_checkout


def git(repo, *args):
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo,
                          capture_output=True, text=True, check=True).stdout.strip()


def test_commits_onto_a_branch_without_touching_the_checkout(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "data.dvc").write_text("md5: 1\n")
    git(repo, "add", "data.dvc")
    git(repo, "commit", "-qm", "start")
    assert is_git_checkout(repo) and not is_git_checkout(tmp_path)
    (repo / "data.dvc").write_text("md5: 2\n")
    first = commit_to_branch(repo, "data-updates", ["data.dvc"], "retrain: v2")
    assert git(repo, "show", "data-updates:data.dvc") == "md5: 2"
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "main"          # still on main
    assert git(repo, "status", "--porcelain") == "M data.dvc"               # working tree as it was
    assert commit_to_branch(repo, "data-updates", ["data.dvc"], "retry") is None  # a retry adds nothing
    (repo / "data.dvc").write_text("md5: 3\n")
    second = commit_to_branch(repo, "data-updates", ["data.dvc"], "retrain: v3")
    assert git(repo, "rev-parse", "data-updates^") == first and second != first
