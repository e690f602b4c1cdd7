package ocsf

import (
	"strconv"

	"github.com/vigil-sensor/vigil/internal/jsonstr"
)

// The OCSF objects are written with ordered appends, in the order of their struct fields and
// with encoding/json's omitempty rules (a zero number, an empty string or list, a nil pointer
// is left out), rather than by encoding/json: its reflection was a quarter of an OCSF line's
// time and most of its allocations. Each writer appends its object, braces included, to b.

// appendKey appends the member name key (quoted, with its colon) to the object open at the
// end of b, after a comma unless it is the object's first member.
func appendKey(b []byte, key string) []byte {
	if b[len(b)-1] != '{' {
		b = append(b, ',')
	}
	return append(b, key...)
}

func appendInt(b []byte, key string, v int64) []byte {
	return strconv.AppendInt(appendKey(b, key), v, 10)
}

func appendStr(b []byte, key, v string) []byte {
	return jsonstr.Append(appendKey(b, key), v)
}

func (o *event) appendJSON(b []byte) []byte {
	b = append(b, '{')
	b = appendInt(b, `"activity_id":`, int64(o.ActivityID))
	if o.ActivityName != "" {
		b = appendStr(b, `"activity_name":`, o.ActivityName)
	}
	b = appendInt(b, `"category_uid":`, int64(o.CategoryUID))
	b = appendStr(b, `"category_name":`, o.CategoryName)
	b = appendInt(b, `"class_uid":`, int64(o.ClassUID))
	b = appendStr(b, `"class_name":`, o.ClassName)
	b = appendInt(b, `"type_uid":`, o.TypeUID)
	b = appendInt(b, `"time":`, o.Time)
	b = appendInt(b, `"severity_id":`, int64(o.SeverityID))
	if o.Severity != "" {
		b = appendStr(b, `"severity":`, o.Severity)
	}
	if o.StatusID != nil {
		b = appendInt(b, `"status_id":`, int64(*o.StatusID))
	}
	if o.Status != "" {
		b = appendStr(b, `"status":`, o.Status)
	}
	if o.StatusCode != "" {
		b = appendStr(b, `"status_code":`, o.StatusCode)
	}
	if o.Duration != nil {
		b = appendInt(b, `"duration":`, *o.Duration)
	}
	if o.Count != 0 {
		b = appendInt(b, `"count":`, int64(o.Count))
		b = appendInt(b, `"start_time":`, o.StartTime)
		b = appendInt(b, `"end_time":`, o.EndTime)
	}
	b = o.Metadata.appendJSON(appendKey(b, `"metadata":`))
	if o.Device != nil {
		b = o.Device.appendJSON(appendKey(b, `"device":`))
	}
	if o.Actor != nil {
		b = o.Actor.appendJSON(appendKey(b, `"actor":`))
	}
	if o.Process != nil {
		b = o.Process.appendJSON(appendKey(b, `"process":`))
	}
	if o.LaunchTypeID != nil {
		b = appendInt(b, `"launch_type_id":`, int64(*o.LaunchTypeID))
	}
	if o.ExitCode != nil {
		b = appendInt(b, `"exit_code":`, int64(*o.ExitCode))
	}
	if o.File != nil {
		b = o.File.appendJSON(appendKey(b, `"file":`))
	}
	if o.FileResult != nil {
		b = o.FileResult.appendJSON(appendKey(b, `"file_result":`))
	}
	if o.DstEndpoint != nil {
		b = o.DstEndpoint.appendJSON(appendKey(b, `"dst_endpoint":`))
	}
	if o.ConnectionInfo != nil {
		b = o.ConnectionInfo.appendJSON(appendKey(b, `"connection_info":`))
	}
	if o.FindingInfo != nil {
		b = o.FindingInfo.appendJSON(appendKey(b, `"finding_info":`))
	}
	if o.MessageContext != nil {
		b = o.MessageContext.appendJSON(appendKey(b, `"message_context":`))
	}
	return append(b, '}')
}

func (m *metadata) appendJSON(b []byte) []byte {
	b = append(b, '{')
	b = appendStr(b, `"version":`, m.Version)
	b = appendKey(b, `"product":{`)
	b = appendStr(b, `"name":`, m.Product.Name)
	b = appendStr(b, `"vendor_name":`, m.Product.VendorName)
	if m.Product.Version != "" {
		b = appendStr(b, `"version":`, m.Product.Version)
	}
	b = append(b, '}')
	if len(m.Profiles) > 0 {
		b = appendKey(b, `"profiles":[`)
		for i, p := range m.Profiles {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonstr.Append(b, p)
		}
		b = append(b, ']')
	}
	if m.EventCode != "" {
		b = appendStr(b, `"event_code":`, m.EventCode)
	}
	if m.LogName != "" {
		b = appendStr(b, `"log_name":`, m.LogName)
	}
	if m.LogVersion != "" {
		b = appendStr(b, `"log_version":`, m.LogVersion)
	}
	b = strconv.AppendUint(appendKey(b, `"sequence":`), m.Sequence, 10)
	b = append(appendKey(b, `"original_time":`), m.OriginalTime...)
	if m.CorrelationUID != "" {
		b = appendStr(b, `"correlation_uid":`, m.CorrelationUID)
	}
	if m.IsTruncated {
		b = append(appendKey(b, `"is_truncated":`), "true"...)
	}
	return append(b, '}')
}

func (d *device) appendJSON(b []byte) []byte {
	b = append(b, '{')
	if d.Hostname != "" {
		b = appendStr(b, `"hostname":`, d.Hostname)
	}
	if d.BootUID != "" {
		b = appendStr(b, `"boot_uid":`, d.BootUID)
	}
	b = appendInt(b, `"type_id":`, int64(d.TypeID))
	b = appendStr(b, `"type":`, d.Type)
	return append(b, '}')
}

func (a *actor) appendJSON(b []byte) []byte {
	b = append(b, '{')
	if a.AppName != "" {
		b = appendStr(b, `"app_name":`, a.AppName)
	}
	if a.Process != nil {
		b = a.Process.appendJSON(appendKey(b, `"process":`))
	}
	if a.User != nil {
		b = a.User.appendJSON(appendKey(b, `"user":`))
	}
	return append(b, '}')
}

func (u *user) appendJSON(b []byte) []byte {
	b = append(b, '{')
	if u.UID != "" {
		b = appendStr(b, `"uid":`, u.UID)
	}
	if u.Name != "" {
		b = appendStr(b, `"name":`, u.Name)
	}
	if len(u.Groups) > 0 {
		b = appendKey(b, `"groups":[`)
		for i, g := range u.Groups {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(appendStr(append(b, '{'), `"uid":`, g.UID), '}')
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

func (p *process) appendJSON(b []byte) []byte {
	b = append(b, '{')
	b = appendInt(b, `"pid":`, int64(p.PID))
	if p.UID != "" {
		b = appendStr(b, `"uid":`, p.UID)
	}
	if p.Name != "" {
		b = appendStr(b, `"name":`, p.Name)
	}
	if p.Path != "" {
		b = appendStr(b, `"path":`, p.Path)
	}
	if p.CmdLine != "" {
		b = appendStr(b, `"cmd_line":`, p.CmdLine)
	}
	if p.CreatedTime != nil {
		b = appendInt(b, `"created_time":`, *p.CreatedTime)
	}
	if p.WorkingDirectory != "" {
		b = appendStr(b, `"working_directory":`, p.WorkingDirectory)
	}
	if p.PTID != 0 {
		b = appendInt(b, `"ptid":`, int64(p.PTID))
	}
	if p.File != nil {
		b = p.File.appendJSON(appendKey(b, `"file":`))
	}
	if p.ParentProcess != nil {
		b = p.ParentProcess.appendJSON(appendKey(b, `"parent_process":`))
	}
	return append(b, '}')
}

func (f *file) appendJSON(b []byte) []byte {
	b = append(b, '{')
	b = appendStr(b, `"name":`, f.Name)
	if f.Path != "" {
		b = appendStr(b, `"path":`, f.Path)
	}
	b = appendInt(b, `"type_id":`, int64(f.TypeID))
	b = appendStr(b, `"type":`, f.Type)
	if f.Size != nil {
		b = appendInt(b, `"size":`, *f.Size)
	}
	if f.Owner != nil {
		b = f.Owner.appendJSON(appendKey(b, `"owner":`))
	}
	if len(f.Hashes) > 0 {
		b = appendKey(b, `"hashes":[`)
		for i, h := range f.Hashes {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '{')
			b = appendInt(b, `"algorithm_id":`, int64(h.AlgorithmID))
			b = appendStr(b, `"algorithm":`, h.Algorithm)
			b = appendStr(b, `"value":`, h.Value)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

func (e *endpoint) appendJSON(b []byte) []byte {
	b = append(b, '{')
	if e.IP != "" {
		b = appendStr(b, `"ip":`, e.IP)
	}
	if e.Port != 0 {
		b = appendInt(b, `"port":`, int64(e.Port))
	}
	if e.Name != "" {
		b = appendStr(b, `"name":`, e.Name)
	}
	return append(b, '}')
}

func (c *connectionInfo) appendJSON(b []byte) []byte {
	b = append(b, '{')
	b = appendInt(b, `"direction_id":`, int64(c.DirectionID))
	b = appendStr(b, `"direction":`, c.Direction)
	if c.ProtocolVerID != 0 {
		b = appendInt(b, `"protocol_ver_id":`, int64(c.ProtocolVerID))
	}
	return append(b, '}')
}

func (f *findingInfo) appendJSON(b []byte) []byte {
	b = append(b, '{')
	b = appendStr(b, `"uid":`, f.UID)
	if f.Title != "" {
		b = appendStr(b, `"title":`, f.Title)
	}
	if f.Desc != "" {
		b = appendStr(b, `"desc":`, f.Desc)
	}
	if a := f.Analytic; a != nil {
		b = appendKey(b, `"analytic":{`)
		b = appendStr(b, `"uid":`, a.UID)
		if a.Name != "" {
			b = appendStr(b, `"name":`, a.Name)
		}
		b = appendInt(b, `"type_id":`, int64(a.TypeID))
		b = appendStr(b, `"type":`, a.Type)
		b = append(b, '}')
	}
	return append(b, '}')
}

func (c *messageContext) appendJSON(b []byte) []byte {
	b = append(b, '{')
	if c.UID != "" {
		b = appendStr(b, `"uid":`, c.UID)
	}
	b = appendKey(b, `"application":{`)
	b = appendStr(b, `"name":`, c.Application.Name)
	return append(b, '}', '}')
}
