"""Nested views add no stops: tar in one view and in three nested views, interleaved
(5 rounds, medians), with each mode's own start-up (`true`) measured alongside."""
import subprocess, time, statistics, shutil
U = shutil.which("umview")
cmd = ["tar", "cf", "/tmp/nb.tar", "-C", "/usr", "include"]
modes = {"native": cmd, "view": [U, "--"] + cmd, "nested3": [U, "--", U, "--", U, "--"] + cmd,
         "view-true": [U, "--", "true"], "nested3-true": [U, "--", U, "--", U, "--", "true"]}
res = {m: [] for m in modes}
for r in range(5):
    for m, c in modes.items():
        t = time.perf_counter(); subprocess.run(c, check=True); res[m].append(time.perf_counter() - t)
med = {m: statistics.median(v) for m, v in res.items()}
for m in modes: print(f"{m:14s} {med[m]:.3f} s")
print("nested3 / view (whole command):", round(med["nested3"] / med["view"], 3))
print("while running, startup subtracted: view", round((med["view"] - med["view-true"]) / med["native"], 3),
      "nested3", round((med["nested3"] - med["nested3-true"]) / med["native"], 3))
