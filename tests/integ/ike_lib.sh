# Shared by the ike-n3iwf / ike-ue integration tests (sourced after lib.sh).
# N3_OPTS: extra N3IWF flags of the test (split on spaces).
N3=$BINDIR/ike-n3iwf
UE=$BINDIR/ike-ue
N3_OPTS=${N3_OPTS:-}

n3_start() {	# MODE PROFILE [args]: N3IWF in the background, N3PID, N3PORT
	m=$1; p=$2; shift 2
	rm -f "$TB/n3.ready"
	# shellcheck disable=SC2086
	"$N3" --mode "$m" --profile "$p" --listen 127.0.0.1:0 --natt-port 0 \
		--ready-file "$TB/n3.ready" --log-level debug --psk test-psk-1 \
		--cert "$SAE_A_CERT" --key "$SAE_A_KEY" --ca "$CA" \
		--kmsd-url "$KMSD_A_URL" --kmsd-cert "$SAE_A_CERT" \
		--kmsd-key "$SAE_A_KEY" --kmsd-ca "$CA" $N3_OPTS \
		"$@" 2>"$TB/n3.log" &
	N3PID=$!
	i=0
	while [ ! -s "$TB/n3.ready" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
	N3PORT=$(sed -n 's/^port=//p' "$TB/n3.ready")
}
