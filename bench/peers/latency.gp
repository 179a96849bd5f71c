# Restart latency CDF per supervisor (called by harness.py):
#   gnuplot -e "outfile='x.png'; files='a.dat b.dat'; titles='supervisord runit'; subtitle='...'" latency.gp
# Each .dat file: latency_ms cumulative_fraction, sorted.
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
  set terminal pngcairo size 900,520 font ",10"
} else {
  set terminal png size 900,520
}
set output outfile
set title "Restart latency after SIGKILL (CDF)\n{/*0.8 ".subtitle."}"
set xlabel "SIGKILL -> new child running (ms, log scale)"
set ylabel "fraction of restarts"
set logscale x
set format x "%g"
set yrange [0:1.02]
set grid xtics ytics mxtics
set key bottom right
plot for [i=1:words(files)] word(files, i) using 1:2 with steps lw 2 title word(titles, i)
