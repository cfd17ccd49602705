# charts-memory.gp - the spike scenario over time: the router's input rate, and each sampler's
# bytes_buffered and traces_pending (bench/charts.sh).
# Variables: datadir (spike-router.tsv: t, spans/s; spike-<sampler>.tsv: t, traces_pending,
# bytes_buffered MiB), samplers (space-separated names), charttitle, outfile.
set terminal pngcairo noenhanced size 1000,900 font "sans,10"
set output outfile
set datafile separator "\t"
set multiplot layout 3,1 title charttitle
set grid
set key top right
set xlabel "seconds since the load generator started"
set xrange [0:*]
set yrange [0:*]

set ylabel "spans/s into the router"
set format y "%.1s%c"
plot datadir."/spike-router.tsv" using 1:2 with lines lw 2 lc rgb "#444444" title "router input"

set ylabel "bytes_buffered (MiB)"
set format y "%g"
plot for [s in samplers] datadir."/spike-".s.".tsv" using 1:3 with lines lw 2 title s

set ylabel "traces_pending"
plot for [s in samplers] datadir."/spike-".s.".tsv" using 1:2 with lines lw 2 title s
unset multiplot
