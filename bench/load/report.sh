#!/bin/sh
# bench/load/report.sh OUT: the table of bench/load/run.sh from OUT/raw.csv
# (one row per cell and round): each cell's median over its rounds
# (failures summed), written to OUT/summary.csv and printed as a Markdown
# table, then the targets: the N3IWF in qkd mode against charon
# (saturated conn/s, same run, same UE count) and memory per held UE.
set -eu
OUT=${1:?usage: report.sh OUT}
[ -s "$OUT/raw.csv" ] || { echo "bench/load: no $OUT/raw.csv" >&2; exit 1; }

# med: the median of the numbers on stdin ("-" when there are none).
awk -F, '
function med(s,    a, n, t, i, j) {
	n = split(s, a, " ")
	if (n == 0) return "-"
	for (i = 2; i <= n; i++) {	# insertion sort, n is small
		t = a[i] + 0
		for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]
		a[j + 1] = t
	}
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function add(k, f, v) { if (v != "-" && v != "") L[k, f] = L[k, f] " " v }
NR == 1 { next }
{
	k = $1 SUBSEP $2 SUBSEP $3
	if (!(k in seen)) { seen[k] = 1; cells[++nc] = k }
	if (!($1 in vs)) { vs[$1] = 1; vo[++nv] = $1 }
	if (!($2 in hs)) { hs[$2] = 1; ho[++nh] = $2 }
	rounds[k]++
	fail[k] += ($6 == "-" ? $2 : $6)
	add(k, "rate", $8); add(k, "p50", $9); add(k, "p99", $11)
	est = $5 + 0; held = $13 + 0
	if (est > 0) {
		add(k, "ka", $17 / est); add(k, "kb", $18 / est)
		add(k, "cpu", $16 / est); add(k, "uecpu", $21 / est); add(k, "kmscpu", $22 / est)
	}
	if (held > 0) add(k, "kib", ($15 - $14) / held)
	add(k, "load", $19); add(k, "load", $20)
}
END {
	# Order: UE count, variant (as run), offered load ascending, max last.
	for (a = 1; a <= nh; a++)
		for (b = 1; b <= nv; b++) {
			m = 0
			for (c = 1; c <= nc; c++) {
				split(cells[c], f, SUBSEP)
				if (f[1] == vo[b] && f[2] == ho[a]) rs[++m] = f[3] + 0
			}
			for (i = 2; i <= m; i++) {	# rates ascending, 0 (max) last
				t = rs[i]
				for (j = i - 1; j >= 1 && (rs[j] == 0 || (t != 0 && rs[j] > t)); j--) rs[j + 1] = rs[j]
				rs[j + 1] = t
			}
			for (i = 1; i <= m; i++) order[++n] = vo[b] SUBSEP ho[a] SUBSEP rs[i]
		}
	print "variant,ues,rate,rounds,conn_s,p50_ms,p99_ms,failed,keys_a_per_conn,keys_b_per_conn,kib_per_ue,cpu_ms_per_conn,ue_cpu_ms_per_conn,kms_cpu_ms_per_conn,load_min,load_max" > OUT "/summary.csv"
	printf "| responder | UEs | offered /s | conn/s | p50 ms | p99 ms | failed | keys/conn A/B | KiB/UE | CPU ms/conn | UE CPU ms/conn | KMS CPU ms/conn | rounds |\n"
	printf "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|\n"
	for (i = 1; i <= n; i++) {
		k = order[i]; split(k, f, SUBSEP)
		nl = split(L[k, "load"], ld, " "); lmin = ld[1]; lmax = ld[1]
		for (j = 2; j <= nl; j++) { if (ld[j] + 0 < lmin + 0) lmin = ld[j]; if (ld[j] + 0 > lmax + 0) lmax = ld[j] }
		r = med(L[k, "rate"]); p50 = med(L[k, "p50"]); p99 = med(L[k, "p99"])
		ka = med(L[k, "ka"]); kb = med(L[k, "kb"]); kib = med(L[k, "kib"]); cpu = med(L[k, "cpu"])
		uc = med(L[k, "uecpu"]); kc = med(L[k, "kmscpu"])
		printf "%s,%s,%s,%d,%s,%s,%s,%d,%s,%s,%s,%s,%s,%s,%s,%s\n", f[1], f[2], f[3], rounds[k],
		    r, p50, p99, fail[k], ka, kb, kib, cpu, uc, kc, lmin, lmax > OUT "/summary.csv"
		name = f[1] == "charon" ? "charon psk:rfc7296" : "ike-n3iwf " f[1]
		printf "| %s | %s | %s | %s | %s | %s | %d | %s | %s | %s | %s | %s | %d |\n", name, f[2],
		    f[3] == 0 ? "max" : f[3], r, p50, p99, fail[k],
		    (ka == "-" ? "-" : sprintf("%.2f/%.2f", ka, kb)),
		    (kib == "-" ? "-" : sprintf("%.1f", kib)),
		    (cpu == "-" ? "-" : sprintf("%.2f", cpu)), (uc == "-" ? "-" : sprintf("%.2f", uc)),
		    (kc == "-" ? "-" : sprintf("%.2f", kc)), rounds[k]
	}
}' OUT="$OUT" "$OUT/raw.csv"

# The targets, from the saturated cells (offered: max).
echo
awk -F, '
NR == 1 { next }
$3 == 0 { r[$1, $2] = $5; kib[$1, $2] = $11; cpu[$1, $2] = $12; if (!($2 in u)) { u[$2] = 1; us[++nu] = $2 }
	if (!($1 in vseen)) { vseen[$1] = 1; vo[++nv] = $1 } }
END {
	for (i = 1; i <= nu; i++) {
		h = us[i]; c = r["charon", h]
		printf "%s UEs, saturated (--load-rate 0):\n", h
		split("qkd:nwu qkd:rfc7296 psk:rfc7296 psk:nwu qkd+dh:nwu", vs, " ")
		for (j = 1; j <= 5; j++) {
			v = vs[j]
			if (!((v, h) in r) || c == "" || c == "-" || c + 0 == 0 || r[v, h] == "-") continue
			x = r[v, h] / c
			printf "  ike-n3iwf %s / charon: %s / %s conn/s = %.2fx%s\n", v, r[v, h], c, x,
			    v ~ /^qkd:/ ? (x >= 2 ? " (target >= 2x: MET)" : " (target >= 2x: NOT MET)") : ""
			if (cpu[v, h] + 0 > 0 && cpu["charon", h] + 0 > 0)
				printf "    responder CPU per connection: charon %.2f ms / ike-n3iwf %.2f ms = %.2fx\n",
				    cpu["charon", h], cpu[v, h], cpu["charon", h] / cpu[v, h]
		}
		for (j = 1; j <= nv; j++) {
			v = vo[j]
			if (v == "charon" || !((v, h) in kib) || kib[v, h] == "-") continue
			printf "  KiB per held UE, ike-n3iwf %s: %.1f%s\n", v, kib[v, h],
			    kib[v, h] < 16 ? " (target < 16: MET)" : " (target < 16: NOT MET)"
		}
		if ((("charon", h) in kib) && kib["charon", h] != "-")
			printf "  KiB per held UE, charon: %.1f\n", kib["charon", h]
	}
}' "$OUT/summary.csv"
echo
cat "$OUT/meta" 2>/dev/null | sed 's/^/# /'
