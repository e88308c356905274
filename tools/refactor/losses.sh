#!/bin/bash
# usage: losses.sh BIN OUTDIR — 20 CPU steps of the tiny config per model, prints step losses
BIN=$1; OUT=$2; rm -rf $OUT; mkdir -p $OUT
for m in dsrsq standard rag attention_rag gca razor pyramid no_dsr no_sqa no_rckv; do
  $BIN train --config tiny --model $m --data passkey:ctx=256 --steps 20 --eval-every 0 --checkpoint-every 1000 --quiet --out $OUT/$m > $OUT/$m.log 2>&1 || echo "FAIL $m"
  python3 -c "
import json,sys
for l in open('$OUT/$m/metrics.jsonl'):
    r=json.loads(l); print('$m', r['step'], repr(r['loss']))
" > $OUT/$m.losses
done
