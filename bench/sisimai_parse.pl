#!/usr/bin/perl
# Parse bounce and complaint messages with Sisimai and print one line per result, the
# comparison command of `bench/parse_reports.py --vs-command "perl bench/sisimai_parse.pl"`.
#
#   perl bench/sisimai_parse.pl FILE...
#
# Prints "FILE: ADDRESS STATUS REASON" for each recipient Sisimai finds and "FILE: none" for a
# file in which it finds none. Sisimai 5 calls its parser rise(), Sisimai 4 (Debian's
# libsisimai-perl) make(); whichever the installed version has is used.
use strict;
use warnings;
use Sisimai;

die "usage: perl bench/sisimai_parse.pl FILE...\n" unless @ARGV;
my $parser = Sisimai->can('rise') ? 'rise' : 'make';
my $unreadable = 0;
binmode STDOUT, ':encoding(UTF-8)';
for my $file (@ARGV) {
    unless ( -f $file && -r _ ) {
        print STDERR "$file: cannot read the file\n";
        $unreadable++;
        next;
    }
    my $results = Sisimai->$parser($file) || [];
    print "$file: none\n" unless @$results;
    for my $r (@$results) {
        printf "%s: %s %s %s\n", $file, $r->recipient->address,
            $r->deliverystatus || '-', $r->reason || '-';
    }
}
exit( $unreadable ? 2 : 0 );
