# charts-membership.gp - a membership change over time (bench/charts.sh): spans each sampler
# takes in, hand-off bytes each sends, and the p99 of client acknowledgements, with the
# scenario's events (SIGTERM, restart, ring edit) as vertical lines.
# Variables: datadir (membership-<sampler>.tsv: t, spans/s in, hand-off KiB/s out;
# membership-p99.tsv: t, p99 ms; membership-arrows.gp: one `set arrow` per event), samplers,
# charttitle, xmax (seconds shown), outfile.
set terminal pngcairo noenhanced size 1000,900 font "sans,10"
set output outfile
set datafile separator "\t"
set multiplot layout 3,1 title charttitle
set grid
set key top right
set xlabel "seconds since the load generator started"
set xrange [0:xmax + 0]
set yrange [0:*]
load datadir."/membership-arrows.gp"

set ylabel "spans/s taken in"
set format y "%.1s%c"
plot for [s in samplers] datadir."/membership-".s.".tsv" using 1:2 with lines lw 2 title s

set ylabel "hand-off KiB/s sent"
set format y "%g"
plot for [s in samplers] datadir."/membership-".s.".tsv" using 1:3 with lines lw 2 title s

set ylabel "client ack p99 (ms), per 0.5 s"
plot datadir."/membership-p99.tsv" using 1:2 with lines lw 2 lc rgb "#444444" title "p99"
unset multiplot
