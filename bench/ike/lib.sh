# shellcheck shell=sh
# Shared by bench/ike/run.sh and bench/ike/delays.sh (sourced).

# stats: "median sd n mean" of the numbers on stdin (sample SD, n - 1);
# "- - 0 -" when there are none.
stats() {
	sort -g | awk '{v[NR]=$1; s+=$1; q+=$1*$1}
	END {
		if (NR == 0) { print "- - 0 -"; exit }
		med = NR % 2 ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2
		mean = s / NR; var = NR > 1 ? (q - NR*mean*mean) / (NR - 1) : 0
		if (var < 0) var = 0
		printf "%.3f %.3f %d %.3f\n", med, sqrt(var), NR, mean
	}'
}
