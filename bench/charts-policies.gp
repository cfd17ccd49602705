# charts-policies.gp - recall per category and retention, one bar per policy set (bench/charts.sh).
# Variables: datafile (TSV: category, then one column per policy set, percent), ncols, outfile.
set terminal pngcairo noenhanced size 1000,520 font "sans,10"
set output outfile
set datafile separator "\t"
set title "What each policy set keeps: recall per category (share of its turns kept), then retention of all turns and spans"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set yrange [0:105]
set ylabel "percent"
set ytics 10
set grid ytics
set key outside bottom center horizontal
set bmargin 5
set xtics nomirror
plot for [i=2:int(real(ncols))] datafile using i:xtic(1) title columnheader(i)
