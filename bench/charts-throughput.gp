# charts-throughput.gp - spans per CPU-second of each process of each scenario, beside the
# harness's own ceiling (bench/charts.sh).
# Variables: datafile (TSV: index, "scenario\nprocess", spans per CPU-second, group: 0 harness,
# 1 ringtail), charttitle, outfile.
set terminal pngcairo noenhanced size 1100,560 font "sans,10"
set output outfile
set datafile separator "\t"
set title charttitle
set style fill solid 0.85 border -1
set boxwidth 0.8
set yrange [0:*]
set ylabel "spans per CPU-second"
set format y "%.1s%c"
set grid ytics
set key outside bottom center horizontal
set bmargin 6
set xtics nomirror
set xrange [-0.6:*]
plot datafile using 1:($4 == 0 ? $3 : 1/0) with boxes lc rgb "#999999" title "harness ceiling (loadgen -> sink)", \
     datafile using 1:($4 == 1 ? $3 : 1/0) with boxes lc rgb "#1f77b4" title "ringtail process", \
     datafile using 1:3:(sprintf("%.0fk", $3 / 1000)):xtic(2) with labels offset 0,0.7 notitle
