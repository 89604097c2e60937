namespace HymbaTools.Reports.Charts;

/// <summary>A point to label: its position in px, the radius of its marker, and its text.</summary>
internal sealed record LabelledPoint(double X, double Y, double MarkerRadius, string Text);

/// <summary>Where a label went: its baseline start (text-anchor start), its box, and a leader line when it sits away from its point.</summary>
internal sealed record PlacedLabel(LabelledPoint Point, double X, double Baseline, Box Box, (double X1, double Y1, double X2, double Y2)? Leader);

/// <summary>
/// Places one label beside each point of a scatter so that no label overlaps another label, any marker, a leader
/// line or an obstacle, and every label stays inside its area. Deterministic and greedy: the most crowded points
/// choose first; each takes the first free spot among candidates around its point (the eight compass positions
/// next to the marker, then the same directions farther out with a leader line back to the point), and when all of
/// those are taken, the free spot nearest to its point on a grid over the whole area. Three or more points whose
/// markers pile up are labelled as one block, a line per point (labels placed one by one around a pile would wall
/// it in, leaving no way out for the leader lines of the rest). Text boxes are the conservative estimates of
/// <see cref="TextMetrics"/>. Null when some label finds no room at all: the caller then makes the chart taller.
/// </summary>
internal static class LabelPlacer
{
    /// <summary>Gaps between a marker's edge and its label, in px; beyond the first a leader line is drawn.</summary>
    private static readonly double[] Rings = [3, 12, 24, 40, 60, 85];

    /// <summary>Compass directions in order of preference: right of the point reads first, then left, then the diagonals, then above and below.</summary>
    private static readonly (int Dx, int Dy)[] Directions = [(1, 0), (-1, 0), (1, -1), (1, 1), (-1, -1), (-1, 1), (0, -1), (0, 1)];

    /// <summary>Space kept clear around every label box, in px.</summary>
    private const double Padding = 2;

    private const double GridStep = 4;

    /// <summary>What is placed as one box: a single point's label, or the lines of a pile of points (members in reading order).</summary>
    private sealed record Item(double X, double Y, double Radius, IReadOnlyList<LabelledPoint> Members, double Width, double LineHeight)
    {
        public double Height => LineHeight * Members.Count;
    }

    private sealed record Placement(Item Item, Box Box, (double X1, double Y1, double X2, double Y2)? Leader);

    public static IReadOnlyList<PlacedLabel>? Place(IReadOnlyList<LabelledPoint> points, Box area, double fontSize, IReadOnlyList<Box> obstacles)
    {
        var markers = points.Select(p => new Box(p.X - p.MarkerRadius, p.Y - p.MarkerRadius, p.X + p.MarkerRadius, p.Y + p.MarkerRadius).Inflate(1)).ToList();
        var placed = new List<Placement>();
        foreach (var item in Order(Items(points, fontSize)))
        {
            var placement = Candidates(item).Select(c => Make(item, c)).FirstOrDefault(c => Free(c, area, markers, obstacles, placed))
                            ?? GridScan(item, area, markers, obstacles, placed);
            if (placement is null) return null;
            placed.Add(placement);
        }
        // One label per point, back in the caller's order; a pile's first line carries the block's leader.
        var byPoint = new Dictionary<LabelledPoint, PlacedLabel>(ReferenceEqualityComparer.Instance);
        var (ascent, _) = TextMetrics.Extent(fontSize);
        foreach (var p in placed)
            for (int i = 0; i < p.Item.Members.Count; i++)
            {
                double top = p.Box.Top + i * p.Item.LineHeight;
                var member = p.Item.Members[i];
                var line = new Box(p.Box.Left, top, p.Box.Left + TextMetrics.Width(member.Text, fontSize), top + p.Item.LineHeight - 1);
                // The text's own margin (TextMetrics adds 2 px to the width) is split evenly: the glyphs start 1 px in.
                byPoint[member] = new PlacedLabel(member, p.Box.Left + 1, top + ascent, line, i == 0 ? p.Leader : null);
            }
        return points.Select(p => byPoint[p]).ToList();
    }

    /// <summary>Points whose markers overlap, joined transitively; piles of three or more become one item.</summary>
    private static List<Item> Items(IReadOnlyList<LabelledPoint> points, double fontSize)
    {
        var parent = Enumerable.Range(0, points.Count).ToArray();
        int Find(int i) => parent[i] == i ? i : parent[i] = Find(parent[i]);
        for (int i = 0; i < points.Count; i++)
            for (int j = i + 1; j < points.Count; j++)
            {
                double reach = points[i].MarkerRadius + points[j].MarkerRadius;
                if (Math.Abs(points[i].X - points[j].X) < reach && Math.Abs(points[i].Y - points[j].Y) < reach) parent[Find(i)] = Find(j);
            }
        var (ascent, descent) = TextMetrics.Extent(fontSize);
        double lineHeight = ascent + descent + 1;   // a pixel of leading keeps a block's lines apart after rounding
        var items = new List<Item>();
        foreach (var group in Enumerable.Range(0, points.Count).GroupBy(Find).OrderBy(g => g.Min()))
        {
            var members = group.Count() >= 3 ? group.Select(i => points[i]).OrderBy(p => p.Y).ThenBy(p => p.X).ThenBy(p => p.Text, StringComparer.Ordinal).ToList()
                : null;
            if (members is null)
            {
                items.AddRange(group.Select(i => points[i]).Select(p => new Item(p.X, p.Y, p.MarkerRadius, [p], TextMetrics.Width(p.Text, fontSize), lineHeight)));
                continue;
            }
            double cx = members.Average(p => p.X), cy = members.Average(p => p.Y);
            double radius = members.Max(p => Math.Max(Math.Abs(p.X - cx), Math.Abs(p.Y - cy)) + p.MarkerRadius);
            items.Add(new Item(cx, cy, radius, members, members.Max(p => TextMetrics.Width(p.Text, fontSize)), lineHeight));
        }
        return items;
    }

    /// <summary>Piles and the points with most neighbours within 48 px first (they have the fewest free spots), ties by position and text.</summary>
    private static IEnumerable<Item> Order(List<Item> items) =>
        items.OrderByDescending(p => p.Members.Count)
             .ThenByDescending(p => items.Count(q => !ReferenceEquals(p, q) && Math.Abs(p.X - q.X) < 48 && Math.Abs(p.Y - q.Y) < 48))
             .ThenBy(p => p.X).ThenBy(p => p.Y).ThenBy(p => p.Members[0].Text, StringComparer.Ordinal);

    /// <summary>Top-left corners of the item's box around its point, nearest first.</summary>
    private static IEnumerable<(double Left, double Top, bool Leader)> Candidates(Item p)
    {
        double w = p.Width, h = p.Height;
        foreach (double gap in Rings)
        {
            bool leader = gap > Rings[0];
            foreach (var (dx, dy) in Directions)
            {
                // Diagonals sit off the marker's corner; straight directions centre the box on the point's axis.
                double reach = p.Radius + gap;
                double diagonal = dx != 0 && dy != 0 ? 0.75 : 1;
                double left = dx switch { > 0 => p.X + reach * diagonal, < 0 => p.X - reach * diagonal - w, _ => p.X - w / 2 };
                double top = dy switch { > 0 => p.Y + reach * diagonal, < 0 => p.Y - reach * diagonal - h, _ => p.Y - h / 2 };
                yield return (left, top, leader);
            }
        }
    }

    private static Placement Make(Item p, (double Left, double Top, bool Leader) c)
    {
        var box = new Box(c.Left, c.Top, c.Left + p.Width, c.Top + p.Height);
        (double, double, double, double)? leader = null;
        if (c.Leader)
        {
            // From the marker's edge towards the nearest point of the box, ending just short of it.
            double nx = Math.Clamp(p.X, box.Left, box.Right), ny = Math.Clamp(p.Y, box.Top, box.Bottom);
            double dx = nx - p.X, dy = ny - p.Y, length = Math.Sqrt(dx * dx + dy * dy);
            if (length > p.Radius + 2)
                leader = (p.X + dx / length * (p.Radius + 1), p.Y + dy / length * (p.Radius + 1), nx - dx / length * 1.5, ny - dy / length * 1.5);
        }
        return new Placement(p, box, leader);
    }

    private static bool Free(Placement label, Box area, List<Box> markers, IReadOnlyList<Box> obstacles, List<Placement> placed)
    {
        if (!label.Box.Inside(area)) return false;
        var padded = label.Box.Inflate(Padding);
        if (markers.Any(padded.Overlaps) || obstacles.Any(padded.Overlaps)) return false;
        foreach (var other in placed)
        {
            if (padded.Overlaps(other.Box)) return false;
            if (other.Leader is { } l && padded.Crosses(l.X1, l.Y1, l.X2, l.Y2)) return false;
            if (label.Leader is { } mine && other.Box.Inflate(Padding).Crosses(mine.X1, mine.Y1, mine.X2, mine.Y2)) return false;
        }
        // A leader line must not run through another point's marker either, except the markers of its own pile.
        var item = label.Item;
        return label.Leader is not { } line || markers.Where(m => Math.Abs(m.CenterX - item.X) > item.Radius + m.Width / 2 || Math.Abs(m.CenterY - item.Y) > item.Radius + m.Height / 2)
            .All(m => !m.Crosses(line.X1, line.Y1, line.X2, line.Y2));
    }

    /// <summary>The free spot nearest to the point on a grid over the area (every position the rings missed), with a leader line.</summary>
    private static Placement? GridScan(Item p, Box area, List<Box> markers, IReadOnlyList<Box> obstacles, List<Placement> placed)
    {
        Placement? best = null;
        double bestDistance = double.MaxValue;
        for (double top = area.Top; top + p.Height <= area.Bottom; top += GridStep)
            for (double left = area.Left; left + p.Width <= area.Right; left += GridStep)
            {
                double cx = Math.Clamp(p.X, left, left + p.Width) - p.X, cy = Math.Clamp(p.Y, top, top + p.Height) - p.Y;
                double distance = cx * cx + cy * cy;
                if (distance >= bestDistance) continue;
                var label = Make(p, (left, top, true));
                if (!Free(label, area, markers, obstacles, placed)) continue;
                best = label;
                bestDistance = distance;
            }
        return best;
    }
}
